"""PPO with invalid-action masking as an aggregator's learner (optional ``[rl]`` extra).

Seed 003 trains every aggregator with PPO (§5.2) and masks invalid actions
(§3). :class:`PPOLearner` does this with sb3-contrib's ``MaskablePPO`` on
the project's Gymnasium environment (:class:`~market.gym_env.StorageAggregatorEnv`)
and fits the :class:`~market.learners.Learner` interface, so Algorithm 1
(:class:`~market.learning.TwoPhaseLearning`) runs it like the DP and
Q-learning learners.

**One network, every aggregator's data.** Under a fixed belief an
aggregator's MDP is determined by its belief alone (eq. (12) per MWh of
capacity; the net-load term no action changes is left out, as for the other
learners). Each aggregator's environment observes its whole day's belief
(``observe_day``), so a single actor-critic network conditioned on it can
represent every aggregator's policy; one vectorised environment with one
copy per aggregator trains it. This is parameter sharing: it costs one
network instead of one per aggregator, and each aggregator's experience
also teaches the others. The policy an aggregator plays is the network's
output on its own observation.

**A training phase** sets each copy's belief, starts every copy in a random
state (slot and SoE), collects ``training_steps`` steps per copy and runs
PPO's update on them; the network persists across phases.

**Action values.** :meth:`PPOLearner.q_values` returns the policy's
log-probabilities ``log π(a | slot, SoE)``: greedy play
(``play_temperature = 0``) takes the most likely action, and
``play_temperature = 1`` samples π itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from numpy.typing import NDArray
from sb3_contrib import MaskablePPO
from stable_baselines3.common.vec_env import DummyVecEnv

from market.gym_env import StorageAggregatorEnv
from market.storage import StorageModel
from market.wholesale_config import PPOConfig

__all__ = ["PPOLearner"]


class PPOLearner:
    """Masked PPO shared by all aggregators (see the module docstring).

    Parameters
    ----------
    model
        The storage MDP (its discount is PPO's γ).
    n_agents, slots
        Number of aggregators and slots per day.
    settings
        PPO's hyper-parameters (stable-baselines3's ``n_steps`` is ``training_steps``,
        ``n_epochs`` is ``epochs``, ``ent_coef`` is ``entropy``).
    """

    name = "ppo"

    def __init__(
        self,
        model: StorageModel,
        n_agents: int,
        slots: int,
        settings: PPOConfig | None = None,
    ) -> None:
        self.model = model
        self.n_agents, self.slots = n_agents, slots
        self.settings = settings or PPOConfig()
        flat = np.zeros(slots)
        self.envs = [
            StorageAggregatorEnv(
                flat,
                model,
                days=1_000_000,  # a continuing task: phases end episodes, not the clock
                initial_soe=None,
                initial_slot=None,
                observe_day=True,
                normalise_reward=True,
            )
            for _ in range(n_agents)
        ]
        self._ppo: MaskablePPO | None = None
        self._q: NDArray[np.float64] | None = None
        self.samples = 0
        """Environment steps trained on so far, over all aggregators."""

    def _build(self, rng: np.random.Generator) -> MaskablePPO:
        s = self.settings
        envs = self.envs
        vec = DummyVecEnv([_returning(env) for env in envs])
        return MaskablePPO(
            "MlpPolicy",
            vec,
            learning_rate=s.learning_rate,
            n_steps=s.training_steps,
            batch_size=min(s.batch_size, s.training_steps * self.n_agents),
            n_epochs=s.epochs,
            gamma=self.model.discount,
            ent_coef=s.entropy,
            policy_kwargs={"net_arch": [s.hidden_units, s.hidden_units]},
            seed=int(rng.integers(2**31 - 1)),
            device="cpu",
            verbose=0,
        )

    def train(self, belief: NDArray[np.float64], rng: np.random.Generator) -> None:
        """One training phase against ``belief`` ($/MWh, ``(agents, slots)``)."""
        b = np.asarray(belief, dtype=float)
        if b.shape != (self.n_agents, self.slots):
            raise ValueError(f"belief: shape {b.shape}, expected {(self.n_agents, self.slots)}")
        for env, row in zip(self.envs, b, strict=True):
            env.set_belief(row)
        with _single_thread():
            if self._ppo is None:
                self._ppo = self._build(rng)
            steps = self.settings.training_steps * self.n_agents
            # every phase starts the copies afresh (random slot and SoE) under the new belief
            self._ppo.learn(total_timesteps=steps, reset_num_timesteps=True)
        self.samples += steps
        self._q = None

    def q_values(self) -> NDArray[np.float64]:
        """``log π`` per aggregator, slot, SoE and action ``(agents, slots, n_soe, n_actions)``."""
        if self._q is None:
            self._q = self._log_policy()
        return self._q

    def _log_policy(self) -> NDArray[np.float64]:
        m = self.model
        shape = (self.n_agents, self.slots, m.n_soe, m.n_actions)
        if self._ppo is None:  # untrained: uniform over the valid actions
            uniform = -np.log(m.mask.sum(axis=1, keepdims=True))
            return np.broadcast_to(np.where(m.mask, uniform, -np.inf), shape).copy()
        obs = np.stack(
            [
                env.observation(soe, slot)
                for env in self.envs
                for slot in range(self.slots)
                for soe in range(m.n_soe)
            ]
        )
        masks = np.tile(m.mask, (self.n_agents * self.slots, 1))
        policy = self._ppo.policy
        with torch.no_grad(), _single_thread():
            obs_t, _ = policy.obs_to_tensor(obs)
            dist = policy.get_distribution(obs_t, action_masks=masks)
            n = obs.shape[0]
            logp = np.stack(
                [dist.log_prob(torch.full((n,), a)).numpy() for a in range(m.n_actions)], axis=-1
            )
        logp = logp.astype(float).reshape(shape)
        return np.where(m.mask, logp, -np.inf)


def _returning(env: StorageAggregatorEnv) -> Callable[[], StorageAggregatorEnv]:
    """The constructor a vectorised environment asks for, of an existing environment."""
    return lambda: env


@contextmanager
def _single_thread() -> Iterator[None]:
    """Torch on one thread inside: a small network on 2 cores gains nothing from more,
    and a replication's results must not depend on the machine's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
