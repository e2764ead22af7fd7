"""The Gymnasium environment of one aggregator (gymnasium is in the test extra: no skip)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from market.gym_env import StorageAggregatorEnv
from market.storage import StorageModel

MODEL = StorageModel(soe_levels=4, max_action_levels=2, efficiency=0.9, discount=0.9)


def make_env(**kw) -> StorageAggregatorEnv:
    return StorageAggregatorEnv([10.0, 50.0], MODEL, capacity_mwh=2.0, days=3, **kw)


def test_passes_gymnasiums_env_checker():
    check_env(make_env(net_load=[0.3, 0.5]), skip_render_check=True)
    check_env(make_env(initial_soe=None), skip_render_check=True)
    # the configuration the PPO learner trains on
    check_env(
        make_env(initial_soe=None, initial_slot=None, observe_day=True, normalise_reward=True),
        skip_render_check=True,
    )


def rollout(env: StorageAggregatorEnv, seed: int, steps: int = 12) -> list:
    """Random valid actions drawn from the environment's own generator."""
    obs, info = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        valid = np.flatnonzero(info["action_mask"])
        obs, reward, _, truncated, info = env.step(int(env.np_random.choice(valid)))
        out += [obs, reward]
        if truncated:
            obs, info = env.reset()
    return out


def test_a_seeded_rollout_repeats_and_another_seed_differs():
    kw = {"net_load": [0.3, 0.5], "initial_soe": None, "initial_slot": None}
    first = rollout(make_env(**kw), seed=7)
    again = rollout(make_env(**kw), seed=7)
    other = rollout(make_env(**kw), seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_masked_actions_are_exactly_those_that_leave_the_soe_grid():
    env = make_env(initial_soe=None)
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        moves = round(obs[0] * 4) + MODEL.soe_step
        np.testing.assert_array_equal(info["action_mask"], (moves >= 0) & (moves <= 4))


def test_the_day_observation_holds_level_and_shape_from_the_current_slot():
    env = StorageAggregatorEnv([10.0, 40.0, 20.0, 30.0], MODEL, observe_day=True)
    obs = env.observation(soe_index=2, slot=1)
    np.testing.assert_allclose(obs[0], 0.5)
    np.testing.assert_allclose(obs[1:3], [1.0, 0.0], atol=1e-7)  # slot 1 of 4: angle π/2
    np.testing.assert_allclose(obs[3:7], [1.0, 0.5, 0.75, 0.25])  # prices from slot 1, / 40
    np.testing.assert_allclose(obs[7:11], [1.0, -1 / 3, 1 / 3, -1.0], rtol=1e-6)  # (b − 25)/15
    env.set_belief([40.0, 40.0, 40.0, 40.0])  # a flat belief has no shape
    np.testing.assert_allclose(env.observation(0, 0)[7:], 0.0)
    with pytest.raises(ValueError, match="3 prices, the environment has 4 slots"):
        env.set_belief([1.0, 2.0, 3.0])


def test_the_normalised_reward_is_eq_12_over_capacity_and_price_scale():
    env = make_env(initial_soe=0.0, normalise_reward=True)
    env.reset(seed=1)
    _, reward, *_ = env.step(4)  # charge 2 levels at 10 $/MWh; scale 2 MWh · 50 $/MWh
    assert reward == pytest.approx(-10.0 * 2.0 * 0.5 / 0.9 / (2.0 * 50.0))


def test_a_random_start_visits_every_slot():
    env = make_env(initial_slot=None)
    slots = {env.reset(seed=s)[1]["slot"] for s in range(40)}
    assert slots == {0, 1}


def test_reward_is_eq_12_and_masks_follow_the_soe():
    env = make_env(initial_soe=0.0)
    _, info = env.reset(seed=1)
    np.testing.assert_array_equal(info["action_mask"], MODEL.mask[0])
    # charge 2 levels at the cheap slot: pay 10 $/MWh · 2 MWh · (0.5/0.9)
    _, reward, terminated, truncated, info = env.step(4)
    assert reward == pytest.approx(-10.0 * 2.0 * 0.5 / 0.9)
    assert not terminated and not truncated
    np.testing.assert_array_equal(env.action_masks(), MODEL.mask[2])
    # a masked action is replaced by the nearest valid one (here: discharge 2 is valid)
    _, reward, *_ = env.step(0)
    assert reward == pytest.approx(50.0 * 2.0 * 0.45)


def test_invalid_action_is_projected_and_episode_truncates():
    env = make_env(initial_soe=0.0)
    env.reset(seed=0)
    *_, info = env.step(0)  # discharge from empty: nearest valid is "do nothing"
    assert info["applied_action"] == MODEL.idle_action
    steps = 1
    truncated = False
    while not truncated:
        *_, truncated, _ = env.step(MODEL.idle_action)
        steps += 1
    assert steps == 6
