"""PPO as an aggregator's learner (``make test-rl``: needs the optional [rl] extra).

Marked ``rl`` and left out of ``make test``, which does not install torch;
``make test-rl`` installs the extra and runs only these.
"""

from __future__ import annotations

import numpy as np
import pytest

from market.learners import DynamicProgrammingLearner, greedy_policy, greedy_value
from market.storage import StorageModel
from market.wholesale_config import PPOConfig

pytestmark = pytest.mark.rl

MODEL = StorageModel(soe_levels=4, max_action_levels=2, efficiency=0.95, discount=0.95)
CHEAP, DEAR = 20.0, 60.0
SLOTS = 8


def two_price_days(n_agents: int) -> np.ndarray:
    """Cheap in the first half of the day, dear in the second; one level per aggregator."""
    day = np.where(np.arange(SLOTS) < SLOTS // 2, CHEAP, DEAR)
    return day[None, :] * np.linspace(0.8, 1.2, n_agents)[:, None]


def trained(phases: int, seed: int, n_agents: int = 3):
    from market.ppo import PPOLearner  # the [rl] extra: an ImportError here is a failure

    learner = PPOLearner(MODEL, n_agents, SLOTS, PPOConfig(training_steps=64, batch_size=64))
    rng = np.random.default_rng(seed)
    belief = two_price_days(n_agents)
    for _ in range(phases):
        learner.train(belief, rng)
    return learner, belief


def test_ppo_learns_to_charge_when_cheap_and_discharge_when_dear():
    learner, belief = trained(phases=60, seed=0)
    q = learner.q_values()
    # a probability distribution over the valid actions in every state
    np.testing.assert_allclose(np.exp(q).sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.isneginf(q[..., ~MODEL.mask]))
    move = MODEL.soe_step[greedy_policy(MODEL, q)]  # (agents, slots, soe)
    empty, full, rise = 0, MODEL.soe_levels, SLOTS // 2
    # (the optimum, discounted, charges as late as it can: in the last cheap slot for sure)
    assert np.all(move[:, rise - 1, empty] > 0), move[:, :, empty]  # charges before the rise
    assert np.all(move[:, rise:, full] < 0), move[:, :, full]  # discharges when dear
    assert np.all(move[:, rise:, :] <= 0), move[:, rise:]  # never buys when dear
    dp = DynamicProgrammingLearner(MODEL, belief.shape[0], SLOTS)
    dp.train(belief)
    share = greedy_value(MODEL, belief, learner).mean() / dp.values.mean()
    assert 0.9 <= share <= 1.0 + 1e-9, share


def test_the_same_seed_gives_the_same_policy():
    first, _ = trained(phases=2, seed=3, n_agents=2)
    again, _ = trained(phases=2, seed=3, n_agents=2)
    other, _ = trained(phases=2, seed=4, n_agents=2)
    np.testing.assert_array_equal(first.q_values(), again.q_values())
    assert not np.array_equal(first.q_values(), other.q_values())


def test_an_untrained_learner_plays_uniformly_over_valid_actions():
    from market.ppo import PPOLearner

    q = PPOLearner(MODEL, 2, SLOTS).q_values()
    valid = MODEL.mask.sum(axis=1)
    np.testing.assert_allclose(np.exp(q).sum(axis=-1), 1.0)
    np.testing.assert_allclose(np.exp(q[0, 0, 0, MODEL.mask[0]]), 1.0 / valid[0])
