"""Storage MDP, beliefs, learners and Algorithm 1 (seed 003): known answers and invariants."""

from __future__ import annotations

import numpy as np
import pytest

from market.aggregators import ExogenousDraws, MarketCase, advance_population, sample_actions
from market.belief import update_belief
from market.learners import (
    DynamicProgrammingLearner,
    QLearner,
    greedy_value,
    play_policy,
    q_from_values,
)
from market.learning import PlaySettings, TwoPhaseLearning
from market.network import pjm5bus
from market.storage import StorageModel, policy_value, rewards
from models.fixed_point import run_fixed_point

# Two slots, cheap then dear; K = 4 levels of 25 %, moves of up to 2 levels.
TINY = StorageModel(soe_levels=4, max_action_levels=2, efficiency=0.9, discount=0.9)
CHEAP_DEAR = np.array([[10.0, 50.0]])


# -- eq. (8) --------------------------------------------------------------------
def test_belief_update_moves_only_the_observed_slot():
    belief = np.array([[20.0, 30.0, 40.0], [10.0, 10.0, 10.0]])
    new = update_belief(belief, 1, [50.0, 0.0], rate=0.25)
    # (1 − β) b + β LMP: 0.75·30 + 0.25·50 = 35, 0.75·10 + 0 = 7.5
    np.testing.assert_allclose(new, [[20.0, 35.0, 40.0], [10.0, 7.5, 10.0]])
    np.testing.assert_allclose(belief[0, 1], 30.0)  # input untouched
    np.testing.assert_allclose(update_belief(belief, 0, [5.0, 5.0], 1.0)[:, 0], 5.0)
    with pytest.raises(ValueError, match="rate"):
        update_belief(belief, 0, [1.0, 1.0], 0.0)


# -- eqs. (9)–(12) --------------------------------------------------------------
def test_actions_are_the_preimages_of_soe_steps():
    m = TINY
    # δ(a) = η a (a > 0), a/η (a < 0) must equal the SoE move j/K
    delta = np.where(m.grid_energy > 0, m.efficiency * m.grid_energy, m.grid_energy / m.efficiency)
    np.testing.assert_allclose(delta, m.soe_step / m.soe_levels)
    np.testing.assert_allclose(m.grid_energy, [-0.45, -0.225, 0.0, 0.25 / 0.9, 0.5 / 0.9])
    # masks: empty storage cannot discharge, full storage cannot charge
    np.testing.assert_array_equal(m.mask[0], [False, False, True, True, True])
    np.testing.assert_array_equal(m.mask[4], [True, True, True, False, False])
    np.testing.assert_array_equal(m.mask[2], [True] * 5)
    valid_next = m.next_soe[m.mask]
    assert valid_next.min() >= 0 and valid_next.max() <= m.soe_levels
    np.testing.assert_allclose(rewards(m, CHEAP_DEAR)[0, 1], -50.0 * m.grid_energy)


# -- the exact learner on a hand-solvable belief ---------------------------------
def test_dp_charges_when_cheap_and_discharges_when_dear():
    dp = DynamicProgrammingLearner(TINY, 1, 2)
    dp.train(CHEAP_DEAR)
    actions = TINY.soe_step[dp.actions[0]]  # SoE moves per (slot, level)
    # Dear slot: empty as fast as allowed (2 levels). Cheap slot: hold exactly what the
    # next dear slot can sell, 2 levels — charging from below, and selling any energy
    # above it now, even at the cheap price (kept, it would never be sold).
    np.testing.assert_array_equal(actions[0], [2, 1, 0, -1, -2])
    np.testing.assert_array_equal(actions[1], [0, -1, -2, -2, -2])
    # the chosen actions are valid everywhere
    assert np.all(np.take_along_axis(TINY.mask[None], dp.actions[0][..., None], -1))
    # by hand, from (cheap, empty): charge 2 levels (pay 10·0.5/0.9), discharge 2 (earn
    # 50·0.5·0.9), back at (cheap, empty): V = (−50/9 + 0.9·22.5) / (1 − 0.81)
    assert dp.values[0, 0, 0] == pytest.approx((-50.0 / 9.0 + 0.9 * 22.5) / 0.19)


def test_dp_matches_value_iteration():
    rng = np.random.default_rng(3)
    model = StorageModel(soe_levels=6, max_action_levels=3, efficiency=0.92, discount=0.8)
    belief = rng.uniform(10.0, 60.0, size=(3, 4))
    dp = DynamicProgrammingLearner(model, 3, 4)
    dp.train(belief)
    values = np.zeros((3, 4, model.n_soe))
    for _ in range(400):  # 0.8^400 ≈ 1e-39
        values = q_from_values(model, belief, values).max(axis=-1)
    np.testing.assert_allclose(dp.values, values, rtol=1e-9, atol=1e-9)


def test_dp_value_is_at_least_rl_value_on_the_same_belief():
    rng = np.random.default_rng(11)
    belief = np.array([[12.0, 30.0, 45.0, 20.0], [40.0, 10.0, 25.0, 35.0]])
    model = StorageModel(soe_levels=4, max_action_levels=2, efficiency=0.9, discount=0.9)
    dp = DynamicProgrammingLearner(model, 2, 4)
    dp.train(belief)
    rl = QLearner(model, 2, 4, training_steps=3000, parallel_envs=8, learning_rate=0.2)
    rl.train(belief, rng)
    v_dp, v_rl = dp.values, greedy_value(model, belief, rl)
    print(f"policy value per MWh of capacity: DP {v_dp.mean():.3f}, RL {v_rl.mean():.3f}")
    assert np.all(v_dp >= v_rl - 1e-9 * (1.0 + np.abs(v_dp)))  # the optimum, state by state
    assert v_rl.mean() >= 0.9 * v_dp.mean()  # and the model-free learner gets close
    # the RL learner's Q table never gives a masked action a finite value
    assert np.all(np.isneginf(rl.q_values()[..., ~model.mask]))


def test_play_policy_respects_masks_and_is_a_distribution():
    dp = DynamicProgrammingLearner(TINY, 1, 2)
    dp.train(CHEAP_DEAR)
    for temperature, epsilon in ((0.0, 0.0), (2.0, 0.0), (0.0, 0.3), (5.0, 0.5)):
        pi = play_policy(TINY, dp.q_values(), temperature, epsilon)
        np.testing.assert_allclose(pi.sum(axis=-1), 1.0)
        assert np.all(pi[..., ~TINY.mask] == 0.0)
    with pytest.raises(ValueError, match="masked"):
        bad = np.zeros((1, 2, TINY.n_soe, TINY.n_actions))
        bad[..., 0] = 1.0  # "discharge 2 levels" everywhere, also when empty
        policy_value(TINY, CHEAP_DEAR, bad)


def test_population_stays_within_bounds_and_conserves_prosumers():
    rng = np.random.default_rng(5)
    counts = np.array([[100, 0, 50, 0, 7], [0, 0, 0, 0, 1000]])
    mask = TINY.mask
    for _ in range(50):
        q = np.where(mask, rng.normal(size=(2, TINY.n_soe, TINY.n_actions)), -np.inf)
        pi = play_policy(TINY, q[:, None], temperature=1.0, epsilon=0.2)[:, 0]
        chosen = sample_actions(rng, counts, pi)
        assert np.all(chosen[:, ~mask] == 0)  # nobody took a masked action
        counts = advance_population(TINY, chosen)
        assert counts.sum(axis=1).tolist() == [157, 1000]
        assert counts.shape == (2, TINY.n_soe) and counts.min() >= 0


# -- Algorithm 1 on the built-in network ----------------------------------------
def small_case(storage_kwh: float) -> MarketCase:
    net = pjm5bus()
    slots = 12
    shape = 0.75 + 0.25 * np.sin(np.linspace(0, 2 * np.pi, slots, endpoint=False) - 2.0)
    pv = np.clip(np.sin(np.linspace(-np.pi / 2, 3 * np.pi / 2, slots, endpoint=False)), 0, None)
    return MarketCase(
        network=net,
        dt_h=2.0,
        consumer_mw=0.8 * shape[:, None] * net.nominal_demand_mw[None, :],
        prosumers=np.rint(10.0 * net.nominal_demand_mw).astype(np.int64),
        prosumer_load_kw=np.full(slots, 0.7),
        prosumer_pv_kw=3.0 * pv,
        solar_shape=pv,
        storage_kwh=storage_kwh,
    )


def run_small(seed: int, learner: str, storage_kwh: float = 10.0):
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    case = small_case(storage_kwh)
    draws = ExogenousDraws.draw(rng, 36, 5, (0.9, 1.0, 1.1), (0.4, 0.9, 1.0), (0.1, 0.3, 0.6))
    model = StorageModel(soe_levels=10, max_action_levels=5, efficiency=0.95, discount=0.99)
    n = case.aggregator_bus.size
    agent = (
        DynamicProgrammingLearner(model, n, 12)
        if learner == "dp"
        else QLearner(model, n, 12, training_steps=20, parallel_envs=4)
    )
    settings = PlaySettings(belief_rate=0.2, temperature=0.5, epsilon=0.05)
    algo = TwoPhaseLearning(case, draws, model, agent, settings, rng)
    return run_fixed_point(algo, 36).state


@pytest.mark.parametrize("learner", ["dp", "rl"])
def test_same_seed_gives_identical_tables(learner):
    a, b = run_small(4, learner), run_small(4, learner)
    for name in ("lmp", "bids_mw", "storage_mw", "soe", "belief", "action"):
        np.testing.assert_array_equal(getattr(a.record, name), getattr(b.record, name))
    np.testing.assert_array_equal(a.counts, b.counts)
    c = run_small(5, learner)
    assert not np.array_equal(a.record.lmp, c.record.lmp)


def test_play_phase_records_are_consistent():
    state = run_small(1, "dp")
    rec = state.record
    assert np.all(np.isfinite(rec.lmp)) and state.step == 36
    assert np.all((rec.soe >= 0.0) & (rec.soe <= 1.0))
    # storage power is what the mean action implies: fraction × capacity / Δt
    case = small_case(10.0)
    np.testing.assert_allclose(rec.storage_mw, rec.action * case.storage_mwh / 2.0, atol=1e-9)
    # the SoE moves by the stored energy: Δs = δ(a) averaged over prosumers
    assert np.any(rec.storage_mw != 0.0)
    # eq. (8) on the record: belief after step t differs from before only in slot t mod 12
    changed = np.any(rec.belief[1:] != rec.belief[:-1], axis=1)  # (steps, slots)
    expected = np.zeros_like(changed)
    expected[np.arange(36), np.arange(36) % 12] = True
    assert not np.any(changed & ~expected)
    assert changed.any()


def test_no_storage_run_has_no_actions_and_needs_no_learner():
    state = run_small(2, "dp", storage_kwh=0.0)
    assert np.all(state.record.storage_mw == 0.0)
