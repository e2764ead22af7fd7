"""A Gymnasium environment for one aggregator's storage (optional ``[rl]`` extra).

The training phase of seed 003's Algorithm 1 for one aggregator, as a
standard environment so that off-the-shelf agents (e.g. stable-baselines3
PPO, or sb3-contrib's MaskablePPO, which reads :meth:`action_masks`) can
stand in for the learners of :mod:`market.learners`. Install with
``pip install prosumer-cosim[rl]``; the rest of the package does not need
Gymnasium.

- Observation (``Box``, float32): SoE (fraction of capacity), the slot of day
  as ``(sin, cos)`` of its angle, and the believed LMP of the current slot
  divided by the belief's largest magnitude (in [−1, 1]). With
  ``observe_day=True`` the whole day's belief follows instead, from the
  current slot on, twice: divided by its largest magnitude (the price level)
  and as its deviation from the day's mean divided by the largest deviation
  (the shape). An aggregator's MDP is then a function of its observation, so
  one policy can serve aggregators with different beliefs
  (:class:`market.ppo.PPOLearner`).
- Action (``Discrete(2m + 1)``): index ``m + j`` moves the SoE by ``j/K`` of
  capacity, eqs. (9)–(11) (:class:`~market.storage.StorageModel`). Invalid
  actions are masked: :meth:`action_masks` and ``info["action_mask"]`` give
  the valid ones; an invalid action that is taken anyway is replaced by the
  nearest valid one (same direction, smaller move).
- Reward: eq. (12) for the whole pool, ``−b_τ · C · (d_τ + a)`` in $, with
  ``C`` the pooled capacity (MWh) and ``d_τ`` the prosumers' net load as a
  fraction of capacity, sampled from a triangular factor on its mean shape.
  With ``normalise_reward=True`` it is divided by ``C · max|b|`` (same
  optimal policy, rewards of order one for gradient-based learners).
- An episode starts at slot ``initial_slot`` (``None``: a uniform draw) and
  lasts ``days`` days (truncated, never terminated).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike, NDArray

from market.storage import StorageModel

__all__ = ["StorageAggregatorEnv"]


class StorageAggregatorEnv(gym.Env):
    """One aggregator's pooled storage against a fixed LMP belief.

    Parameters
    ----------
    belief
        LMP belief per slot of the day ($/MWh).
    model
        The storage MDP; defaults to :class:`~market.storage.StorageModel`.
    capacity_mwh
        Pooled storage capacity C (MWh).
    net_load
        Prosumers' mean net load per slot as a fraction of capacity; zeros if omitted.
    net_load_factor
        ``(low, mode, high)`` of the triangular factor on the net load.
    days
        Episode length in days.
    initial_soe
        SoE at reset (fraction); ``None`` draws a grid level uniformly.
    initial_slot
        Slot of day at reset; ``None`` draws one uniformly.
    observe_day
        Observe the whole day's belief (level and shape), not only the current price.
    normalise_reward
        Divide the reward by ``C · max|b|``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium's convention)

    def __init__(
        self,
        belief: ArrayLike,
        model: StorageModel | None = None,
        *,
        capacity_mwh: float = 1.0,
        net_load: ArrayLike | None = None,
        net_load_factor: tuple[float, float, float] = (0.9, 1.0, 1.1),
        days: int = 1,
        initial_soe: float | None = 0.5,
        initial_slot: int | None = 0,
        observe_day: bool = False,
        normalise_reward: bool = False,
    ) -> None:
        super().__init__()
        self.model = model or StorageModel()
        self.slots = int(np.size(belief))
        self.set_belief(belief)
        self.capacity_mwh = float(capacity_mwh)
        self.net_load = (
            np.zeros(self.slots) if net_load is None else np.asarray(net_load, dtype=float)
        )
        if self.net_load.shape != (self.slots,):
            raise ValueError("net_load: one value per slot of the day")
        self.net_load_factor = net_load_factor
        self.horizon = days * self.slots
        self.initial_soe, self.initial_slot = initial_soe, initial_slot
        if initial_slot is not None and not 0 <= initial_slot < self.slots:
            raise ValueError(f"initial_slot: {initial_slot} is not a slot of the day")
        self.observe_day, self.normalise_reward = observe_day, normalise_reward
        self.action_space = spaces.Discrete(self.model.n_actions)
        size = 3 + (2 * self.slots if observe_day else 1)
        low = np.full(size, -1.0, dtype=np.float32)
        low[0] = 0.0
        self.observation_space = spaces.Box(low, np.ones(size, dtype=np.float32), dtype=np.float32)
        self._soe = 0
        self._start = 0
        self._t = 0

    def set_belief(self, belief: ArrayLike) -> None:
        """Replace the LMP belief ($/MWh per slot; same number of slots) between episodes."""
        b = np.asarray(belief, dtype=float)
        if b.ndim != 1 or b.size < 1 or not np.all(np.isfinite(b)):
            raise ValueError("belief: one finite price per slot of the day")
        if b.size != self.slots:
            raise ValueError(f"belief: {b.size} prices, the environment has {self.slots} slots")
        self.belief = b
        self._scale = max(float(np.max(np.abs(b))), 1e-9)
        shape = b - b.mean()
        self._shape = shape / max(float(np.max(np.abs(shape))), 1e-9)

    # -- Gymnasium API ---------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode at slot 0."""
        super().reset(seed=seed)
        if self.initial_soe is None:
            self._soe = int(self.np_random.integers(0, self.model.n_soe))
        else:
            self._soe = self.model.soe_index(self.initial_soe)
        if self.initial_slot is None:
            self._start = int(self.np_random.integers(0, self.slots))
        else:
            self._start = self.initial_slot
        self._t = 0
        return self._observation(), self._info()

    def step(self, action: int) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """Apply one action (masked to the nearest valid one), eqs. (9)–(12)."""
        m = self.model
        a = self._valid(int(action))
        slot = self._slot()
        low, mode, high = self.net_load_factor
        load = self.net_load[slot] * float(self.np_random.triangular(low, mode, high))
        reward = -self.belief[slot] * self.capacity_mwh * (load + float(m.grid_energy[a]))
        if self.normalise_reward:
            reward /= self.capacity_mwh * self._scale
        self._soe = int(m.next_soe[self._soe, a])
        self._t += 1
        info = self._info()
        info["applied_action"] = a
        return self._observation(), float(reward), False, self._t >= self.horizon, info

    # -- masking -----------------------------------------------------------------
    def action_masks(self) -> NDArray[np.bool_]:
        """Valid actions in the current state (sb3-contrib's MaskablePPO reads this)."""
        return self.model.mask[self._soe].copy()

    def _valid(self, action: int) -> int:
        if not 0 <= action < self.model.n_actions:
            raise ValueError(f"action {action} is not in [0, {self.model.n_actions})")
        if self.model.mask[self._soe, action]:
            return action
        idle = self.model.idle_action
        step = -1 if action > idle else 1
        while not self.model.mask[self._soe, action]:
            action += step
        return action

    def observation(self, soe_index: int, slot: int) -> NDArray[np.float32]:
        """The observation of state (SoE grid index, slot of day) under the current belief."""
        angle = 2.0 * np.pi * slot / self.slots
        head = [self.model.soe[soe_index], np.sin(angle), np.cos(angle)]
        if not self.observe_day:
            return np.array([*head, self.belief[slot] / self._scale], dtype=np.float32)
        ahead = np.roll(np.arange(self.slots), -slot)
        level, shape = self.belief[ahead] / self._scale, self._shape[ahead]
        return np.concatenate([head, level, shape]).astype(np.float32)

    def _slot(self) -> int:
        return (self._start + self._t) % self.slots

    def _observation(self) -> NDArray[np.float32]:
        return self.observation(self._soe, self._slot())

    def _info(self) -> dict[str, Any]:
        return {"action_mask": self.action_masks(), "slot": self._slot()}
