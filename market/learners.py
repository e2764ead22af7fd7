"""Aggregators' learners: exact dynamic programming and tabular Q-learning.

In the training phase of seed 003's Algorithm 1 every aggregator fixes its
LMP belief and learns a storage policy against it (§4). Under a fixed belief
the mean-field control problem of an aggregator (§3) is the MDP of a
representative prosumer on the state (slot of day, SoE) of
:class:`~market.storage.StorageModel`; its prosumers share the policy.

Two learners share one interface, :class:`Learner`:

- :class:`DynamicProgrammingLearner` solves that MDP exactly by policy
  iteration (each evaluation exact, by pointer doubling along the policy's
  deterministic successors), warm-started from its last policy: the optimum
  that RL learners approximate.
- :class:`QLearner` is model-free: ε-greedy tabular Q-learning with invalid
  actions masked, learning only from sampled transitions of parallel copies
  of the environment; its Q table persists across training phases.

Both expose their action values; :func:`play_policy` turns them into the
distribution prosumers sample from in the play phase (greedy, Boltzmann, and
an ε share of uniform valid actions).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from market.storage import StorageModel, deterministic_policy_value, rewards
from market.wholesale_config import LearningConfig

__all__ = [
    "DynamicProgrammingLearner",
    "Learner",
    "QLearner",
    "greedy_policy",
    "greedy_value",
    "make_learner",
    "play_policy",
    "q_from_values",
]


class Learner(Protocol):
    """What the two-phase algorithm needs from a learner."""

    model: StorageModel

    def train(self, belief: NDArray[np.float64], rng: np.random.Generator) -> None:
        """Training phase: learn against the fixed belief ($/MWh, ``(agents, slots)``)."""
        ...

    def q_values(self) -> NDArray[np.float64]:
        """Action values ``(agents, slots, n_soe, n_actions)``; −inf where masked."""
        ...


def q_from_values(
    model: StorageModel, belief: NDArray[np.float64], values: NDArray[np.float64]
) -> NDArray[np.float64]:
    """One Bellman step: ``Q(τ, s, a) = r(τ, a) + γ V(τ + 1, s + δ(a))``; −inf where masked."""
    nxt = np.roll(values, -1, axis=1)  # V at slot τ + 1 (mod slots)
    q = rewards(model, belief)[:, :, None, :] + model.discount * nxt[:, :, model.next_soe]
    return np.where(model.mask, q, -np.inf)


def greedy_policy(
    model: StorageModel,
    q: NDArray[np.float64],
    keep: NDArray[np.intp] | None = None,
    tolerance: float = 1e-9,
) -> NDArray[np.intp]:
    """Greedy action indices ``(agents, slots, n_soe)`` from action values.

    Among actions within ``tolerance·(1 + |max|)`` of the best, the action in
    ``keep`` (if given and still near-best) wins, then the one with the
    smallest SoE move: ties never flip a policy or trigger needless cycling.
    """
    best = q.max(axis=-1, keepdims=True)
    near = q >= best - tolerance * (1.0 + np.abs(best))
    # prefer the smallest |move|; the sign order breaks the remaining tie
    priority = np.abs(model.soe_step) * 2 + (model.soe_step < 0)
    score = np.where(near, -priority.astype(float), -np.inf)
    choice = np.argmax(score, axis=-1)
    if keep is not None:
        still = np.take_along_axis(near, keep[..., None], axis=-1)[..., 0]
        choice = np.where(still, keep, choice)
    return choice


def play_policy(
    model: StorageModel,
    q: NDArray[np.float64],
    temperature: float = 0.0,
    epsilon: float = 0.0,
) -> NDArray[np.float64]:
    """Action distribution prosumers sample from, ``(agents, slots, n_soe, n_actions)``.

    ``(1 − ε)·π₀ + ε·uniform(valid)``, with π₀ greedy (``temperature = 0``) or
    Boltzmann ``∝ exp(Q/temperature)`` over valid actions (temperature in $
    per MWh of capacity). Masked actions get probability zero.
    """
    if temperature < 0.0 or not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"temperature {temperature} must be ≥ 0 and ε {epsilon} in [0, 1]")
    mask = model.mask
    if temperature == 0.0:
        base = np.zeros(q.shape)
        np.put_along_axis(base, greedy_policy(model, q)[..., None], 1.0, axis=-1)
    else:
        z = np.where(mask, q, -np.inf)
        z = (z - z.max(axis=-1, keepdims=True)) / temperature
        base = np.where(mask, np.exp(z), 0.0)
        base /= base.sum(axis=-1, keepdims=True)
    if epsilon > 0.0:
        uniform = mask / mask.sum(axis=-1, keepdims=True)
        base = (1.0 - epsilon) * base + epsilon * uniform
    return base


class DynamicProgrammingLearner:
    """Exact optimum of each aggregator's MDP by policy iteration.

    Parameters
    ----------
    model
        The storage MDP.
    n_agents, slots
        Number of aggregators and slots per day.
    max_iterations
        Cap on policy-iteration sweeps per training phase (it ends when the
        policy is stable, in a handful of sweeps when warm-started).
    """

    name = "dp"

    def __init__(
        self, model: StorageModel, n_agents: int, slots: int, max_iterations: int = 200
    ) -> None:
        self.model = model
        self.n_agents, self.slots = n_agents, slots
        self.max_iterations = max_iterations
        self.actions = np.full((n_agents, slots, model.n_soe), model.idle_action, dtype=np.intp)
        self.values = np.zeros((n_agents, slots, model.n_soe))
        self._q = q_from_values(model, np.zeros((n_agents, slots)), self.values)
        self.iterations = 0
        """Policy-iteration sweeps of the last training phase."""

    def train(self, belief: NDArray[np.float64], rng: np.random.Generator | None = None) -> None:
        """Solve the MDP of every aggregator for ``belief`` (``rng`` is not used)."""
        b = np.asarray(belief, dtype=float)
        actions, sweeps = self.actions, 0
        while True:
            sweeps += 1
            values = deterministic_policy_value(self.model, b, actions)
            q = q_from_values(self.model, b, values)
            improved = greedy_policy(self.model, q, keep=actions)
            if np.array_equal(improved, actions):
                break
            if sweeps >= self.max_iterations:
                raise RuntimeError(f"policy iteration did not settle in {sweeps} sweeps")
            actions = improved
        self.actions, self.values, self._q, self.iterations = actions, values, q, sweeps

    def q_values(self) -> NDArray[np.float64]:
        """Optimal action values of the last belief trained on."""
        return self._q


class QLearner:
    """Tabular ε-greedy Q-learning with invalid-action masking, in NumPy.

    Each aggregator runs ``parallel_envs`` copies of its storage MDP. A
    training step picks an ε-greedy valid action in every copy, observes the
    reward of eq. (12) and the next state, and applies

        Q(x, a) ← Q(x, a) + α [r + γ max_{a' valid} Q(x', a') − Q(x, a)].

    Copies that visit the same state-action pair in one step share one update
    with their mean TD error. A copy jumps to a random state with probability
    ``restart`` per step so that every SoE level keeps being visited.

    Parameters
    ----------
    model
        The storage MDP.
    n_agents, slots
        Number of aggregators and slots per day.
    training_steps
        M: steps per copy in one training phase.
    parallel_envs
        Copies of the environment per aggregator.
    learning_rate
        α.
    exploration
        ε of the behaviour policy while training.
    restart
        Probability per step that a copy restarts in a random state.
    """

    name = "rl"

    def __init__(
        self,
        model: StorageModel,
        n_agents: int,
        slots: int,
        *,
        training_steps: int = 50,
        parallel_envs: int = 8,
        learning_rate: float = 0.5,
        exploration: float = 0.3,
        restart: float = 0.05,
    ) -> None:
        if training_steps < 0 or parallel_envs < 1:
            raise ValueError("training_steps must be ≥ 0 and parallel_envs ≥ 1")
        if not 0.0 < learning_rate <= 1.0 or not 0.0 <= exploration <= 1.0:
            raise ValueError("learning_rate must lie in (0, 1] and exploration in [0, 1]")
        self.model = model
        self.n_agents, self.slots = n_agents, slots
        self.training_steps, self.parallel_envs = training_steps, parallel_envs
        self.learning_rate, self.exploration, self.restart = learning_rate, exploration, restart
        self._q = np.where(model.mask, 0.0, -np.inf)[None, None].repeat(slots, axis=1)
        self._q = np.ascontiguousarray(self._q.repeat(n_agents, axis=0))
        self._slot: NDArray[np.intp] | None = None
        self._soe: NDArray[np.intp] | None = None
        self.updates = 0
        """Q-table updates made so far, over all copies and aggregators."""

    def _reset(self, rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[NDArray, NDArray]:
        return rng.integers(0, self.slots, shape), rng.integers(0, self.model.n_soe, shape)

    def train(self, belief: NDArray[np.float64], rng: np.random.Generator) -> None:
        """Run ``training_steps`` ε-greedy steps in every copy against ``belief``."""
        m = self.model
        b = np.asarray(belief, dtype=float)
        shape = (self.n_agents, self.parallel_envs)
        if self._slot is None or self._soe is None:
            self._slot, self._soe = self._reset(rng, shape)
        slot, soe = self._slot, self._soe
        agent = np.arange(self.n_agents)[:, None].repeat(self.parallel_envs, axis=1)
        q, grid, gamma, alpha = self._q, m.grid_energy, m.discount, self.learning_rate
        for _ in range(self.training_steps):
            here = q[agent, slot, soe]  # (agents, envs, actions)
            valid = m.mask[soe]
            keys = np.where(valid, rng.random(here.shape), -1.0)
            random_action = np.argmax(keys, axis=-1)
            # greedy with random tie-breaking among the best valid actions
            best = here.max(axis=-1, keepdims=True)
            greedy = np.argmax(np.where(here >= best, keys + 2.0, -1.0), axis=-1)
            explore = rng.random(shape) < self.exploration
            action = np.where(explore, random_action, greedy)
            reward = -b[agent, slot] * grid[action]
            next_slot = (slot + 1) % self.slots
            next_soe = m.next_soe[soe, action]
            target = reward + gamma * q[agent, next_slot, next_soe].max(axis=-1)
            # copies that visit the same (x, a) in one step share one averaged update
            flat = np.ravel_multi_index((agent, slot, soe, action), q.shape).ravel()
            error = (target - q.ravel()[flat].reshape(shape)).ravel()
            pairs, where, visits = np.unique(flat, return_inverse=True, return_counts=True)
            q.ravel()[pairs] += alpha * np.bincount(where, weights=error) / visits
            slot, soe = next_slot, next_soe
            jump = rng.random(shape) < self.restart
            if jump.any():
                new_slot, new_soe = self._reset(rng, shape)
                slot, soe = np.where(jump, new_slot, slot), np.where(jump, new_soe, soe)
        self._slot, self._soe = slot, soe
        self.updates += self.training_steps * self.n_agents * self.parallel_envs

    def q_values(self) -> NDArray[np.float64]:
        """The learned Q table (−inf where masked)."""
        return self._q


def greedy_value(model: StorageModel, belief: ArrayLike, learner: Learner) -> NDArray[np.float64]:
    """Exact value (eq. (13)) of a learner's greedy policy on ``belief``.

    Returns the value per aggregator, slot and SoE level ($ per MWh of capacity).
    """
    b = np.atleast_2d(np.asarray(belief, dtype=float))
    return deterministic_policy_value(model, b, greedy_policy(model, learner.q_values()))


def make_learner(
    learning: LearningConfig,
    model: StorageModel,
    n_agents: int,
    slots: int,
    name: str | None = None,
) -> Learner:
    """The learner ``learning.learner`` (or ``name``) for ``n_agents`` aggregators.

    ``"ppo"`` needs the optional ``[rl]`` extra (scenario validation says so first).
    """
    name = name or learning.learner
    if name == "dp":
        return DynamicProgrammingLearner(model, n_agents, slots)
    if name == "ppo":
        from market.ppo import PPOLearner  # torch and stable-baselines3: the [rl] extra

        return PPOLearner(model, n_agents, slots, learning.ppo)
    rl = learning.rl
    return QLearner(
        model,
        n_agents,
        slots,
        training_steps=rl.training_steps,
        parallel_envs=rl.parallel_envs,
        learning_rate=rl.learning_rate,
        exploration=rl.exploration,
        restart=rl.restart,
    )
