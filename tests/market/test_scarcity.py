"""Scarcity steps and the metrics without them (market/metrics.py): hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from market.metrics import (
    ex_post_cost,
    imv,
    imv_excluding,
    scarcity_metrics,
    scarcity_steps,
)

VOLL = 100.0
# five steps, two buses; step 2 sheds 5 MW and bus 0 is priced at the value of lost load
LMP = np.array([[10.0, 12.0], [20.0, 20.0], [100.0, 30.0], [14.0, 16.0], [18.0, 16.0]])
BIDS = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
SHED_MW = np.array([0.0, 0.0, 5.0, 0.0, 0.0])
HUB = LMP[:, 1]  # bus 1 is the hub


def test_a_step_is_scarce_when_it_sheds_or_an_lmp_reaches_voll():
    lmp = np.array([[10.0, 20.0], [10.0, 99.99999], [10.0, 99.0], [10.0, 20.0], [10.0, 20.0]])
    shed = np.array([1e-3, 0.0, 0.0, 1e-7, 0.0])  # 1e-7 MW is below the tolerance
    np.testing.assert_array_equal(
        scarcity_steps(lmp, shed, VOLL), [True, True, False, False, False]
    )
    np.testing.assert_array_equal(scarcity_steps(LMP, SHED_MW, VOLL), [0, 0, 1, 0, 0])
    with pytest.raises(ValueError, match="do not match"):
        scarcity_steps(LMP, SHED_MW[:3], VOLL)


def test_imv_excluding_drops_every_increment_touching_an_excluded_step():
    out = np.array([False, False, True, False, False])
    # bus 0: kept increments 0→1 |20−10| = 10 and 3→4 |18−14| = 4 → 7; bus 1: 8 and 0 → 4
    np.testing.assert_allclose(imv_excluding(LMP, out, axis=0), [7.0, 4.0])
    np.testing.assert_allclose(imv_excluding(LMP.T, out, axis=1), [7.0, 4.0])
    # nothing excluded: the plain IMV; everything touched: NaN
    np.testing.assert_allclose(imv_excluding(LMP, np.zeros(5, bool), axis=0), imv(LMP, axis=0))
    assert np.isnan(imv_excluding(HUB, [False, True, False, True, False]))
    with pytest.raises(ValueError, match="mask of shape"):
        imv_excluding(LMP, out[:4], axis=0)


def test_scarcity_metrics_of_the_hand_case():
    cost = ex_post_cost(BIDS, LMP, dt_h=1.0)
    np.testing.assert_allclose(cost, [22.0, 40.0, 200.0, 30.0, 34.0])  # total 326
    own = scarcity_steps(LMP, SHED_MW, VOLL)
    m = scarcity_metrics(LMP, HUB, SHED_MW * 1.0, cost, own=own, last=3)
    assert (m["scarcity_steps"], m["scarcity_steps_last_days"]) == (1, 1)
    assert (m["steps_excluded"], m["steps_excluded_last_days"]) == (1, 1)
    assert m["shed_mwh"] == m["shed_mwh_last_days"] == 5.0
    assert m["scarcity_cost_share"] == pytest.approx(200.0 / 326.0)
    assert m["scarcity_cost_share_last_days"] == pytest.approx(200.0 / 264.0)
    assert m["ex_post_cost_total_excl_scarcity"] == pytest.approx(126.0)
    assert m["ex_post_cost_last_days_excl_scarcity"] == pytest.approx(64.0)
    # whole run: buses 7 and 4 → 5.5; last 3 steps: only 3→4 is kept, |4| and |0| → 2; hub 0
    assert m["imv_whole_run_excl_scarcity"] == pytest.approx(5.5)
    assert m["imv_last_days_excl_scarcity"] == pytest.approx(2.0)
    assert m["imv_hub_last_days_excl_scarcity"] == pytest.approx(0.0)


def test_a_paired_mask_leaves_out_the_other_runs_scarcity_steps_too():
    cost = ex_post_cost(BIDS, LMP, dt_h=1.0)
    own = scarcity_steps(LMP, SHED_MW, VOLL)
    paired = own | np.array([False, True, False, False, False])  # the other run's step 1
    m = scarcity_metrics(LMP, HUB, SHED_MW, cost, own=own, exclude=paired, last=3)
    # the run's own counts and cost share do not change; the excluded figures do
    assert m["scarcity_steps"] == 1 and m["steps_excluded"] == 2
    assert m["scarcity_cost_share"] == pytest.approx(200.0 / 326.0)
    assert m["ex_post_cost_total_excl_scarcity"] == pytest.approx(22.0 + 30.0 + 34.0)
    # only 3→4 is kept over the whole run: bus 0 |4|, bus 1 |0|
    assert m["imv_whole_run_excl_scarcity"] == pytest.approx(2.0)
