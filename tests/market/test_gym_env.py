"""The Gymnasium environment of one aggregator (optional [rl] extra)."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium", reason="the [rl] extra (gymnasium) is not installed")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from market.gym_env import StorageAggregatorEnv  # noqa: E402
from market.storage import StorageModel  # noqa: E402

MODEL = StorageModel(soe_levels=4, max_action_levels=2, efficiency=0.9, discount=0.9)


def make_env(**kw) -> StorageAggregatorEnv:
    return StorageAggregatorEnv([10.0, 50.0], MODEL, capacity_mwh=2.0, days=3, **kw)


def test_passes_gymnasiums_env_checker():
    check_env(make_env(net_load=[0.3, 0.5]), skip_render_check=True)
    check_env(make_env(initial_soe=None), skip_render_check=True)


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
