"""ε-Nash estimator (local information): CRN, sign, a non-equilibrium law, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cosim.studies.epsilon import (
    INFO_LOCAL,
    LawUnderTest,
    MeasureGap,
    _run,
    deviators,
    estimate_epsilon_nash,
)
from cosim.studies.montecarlo import run_replications
from models.config import GameConfig
from models.equilibrium import solve_equilibrium
from models.exploitability import continuous_exploitability
from models.game import build_game


@pytest.fixture(scope="module")
def game():
    config = GameConfig.model_validate(
        {
            "seed": 11,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 3, "households": 20, "distances": {"kind": "line"}},
            "solver": {"soe_points": 41},
        }
    )
    return build_game(config)


@pytest.fixture(scope="module")
def gmfg(game):
    result = solve_equilibrium(game, "coc")
    assert result.converged
    return LawUnderTest.from_equilibrium(result)


def test_deviating_to_the_law_changes_nothing(gmfg):
    """Common random numbers: the deviation machinery with the law's own table is the law."""
    hh = np.array([4, 4, 4])
    base = _run(gmfg, hh, seed=5)
    for p, i in enumerate(deviators(hh)):
        same = _run(gmfg, hh, seed=5, deviator=int(i), deviation=gmfg.policy.ess[p])
        np.testing.assert_array_equal(base.rec.bills, same.rec.bills)
        np.testing.assert_array_equal(base.rec.private, same.rec.private)
        np.testing.assert_array_equal(base.rec.stage, same.rec.stage)


def test_a_deviation_moves_only_the_deviator_and_the_prices(gmfg):
    hh = np.array([3, 3, 3])
    base = _run(gmfg, hh, seed=2)
    charge = np.ones_like(gmfg.policy.ess[0])  # charge flat out all day
    dev = _run(gmfg, hh, seed=2, deviator=3, deviation=charge, watch=np.array([3, 4]))
    assert not np.array_equal(base.rec.stage[:, 1], dev.rec.stage[:, 1])
    # the others' energies are untouched: they act on their own state only
    others = np.array(dev.watch_total)[:, 1]
    ref = _run(gmfg, hh, seed=2, watch=np.array([4]))
    np.testing.assert_array_equal(others, np.array(ref.watch_total)[:, 0])


def test_gmfg_gap_is_nonnegative_within_ci_and_reproducible(gmfg, tmp_path):
    summaries = []
    for n in (2, 20):
        est = estimate_epsilon_nash(gmfg, n, 12, 7, tmp_path / f"n{n}", build_replications=6)
        s = est.summary
        assert s["info"] == INFO_LOCAL
        assert s["epsilon_hi"] >= 0.0, s
        assert s["epsilon_lo"] <= s["upper_hi"]
        summaries.append(s)
    again = estimate_epsilon_nash(gmfg, 20, 12, 7, tmp_path / "again", build_replications=6)
    assert again.summary == summaries[1]
    resumed = estimate_epsilon_nash(gmfg, 20, 12, 7, tmp_path / "n20", build_replications=6)
    pd.testing.assert_frame_equal(again.gaps, resumed.gaps, check_exact=True)
    with pytest.raises(ValueError, match="another study"):  # never resume someone else's files
        estimate_epsilon_nash(gmfg, 20, 12, 8, tmp_path / "n20", build_replications=6)


def test_a_non_equilibrium_law_keeps_its_gap(game, tmp_path):
    """The best response to the flat grid price: ε_N tends to its exploitability, and the
    bracket holds it at every size (its own price term is small against that gap)."""
    flat = LawUnderTest.flat_price_response(game, "coc")
    exploit = continuous_exploitability(game, flat.stage_price, flat.policy)
    assert exploit.max() > 1e-3
    for n in (2, 200):
        s = estimate_epsilon_nash(flat, n, 12, 3, tmp_path / f"n{n}").summary
        assert s["epsilon_lo"] > 0.0, s
        assert s["epsilon"] <= s["upper"]
        assert s["epsilon_lo"] <= exploit.max() <= s["upper_hi"], (s, exploit)
    assert s["epsilon"] == pytest.approx(exploit.max(), rel=0.1)


def test_measured_gaps_do_not_depend_on_the_worker_count(gmfg, tmp_path):
    charge = np.ones_like(gmfg.policy.ess)
    fn = MeasureGap(gmfg, np.array([3, 3, 3]), charge)
    one = run_replications(fn, 3, 1, tmp_path / "one", workers=1, progress=False).table
    two = run_replications(fn, 3, 1, tmp_path / "two", workers=2, progress=False).table
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert (one["gap"] != 0.0).all()
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    dask = run_replications(
        fn, 3, 1, tmp_path / "dask", scheduler="local", dask_processes=False, progress=False
    ).table
    pd.testing.assert_frame_equal(one, dask, check_exact=True)


def test_full_information_deviation(gmfg, tmp_path):
    """Full information: a table that ignores the aggregate is the law; the gap's CI reaches 0."""
    from cosim.studies.epsilon import INFO_FULL, FullInformationTables

    hh = np.array([4, 4, 4])
    law_tables = np.repeat(gmfg.policy.ess[:, :, None, :], 3, axis=2)
    edges = np.zeros((3, gmfg.game.steps, 2))
    fn = MeasureGap(gmfg, hh, FullInformationTables(law_tables, edges))
    same = run_replications(fn, 2, 5, tmp_path / "same", progress=False).table
    assert (same["gap"] == 0.0).all()
    est = estimate_epsilon_nash(
        gmfg, 20, 12, 7, tmp_path / "full", build_replications=12, info=INFO_FULL
    )
    assert est.summary["info"] == INFO_FULL
    assert est.summary["epsilon_hi"] >= 0.0, est.summary
    # the lower bound is the better of the two feasible deviations, cluster by cluster
    per = est.gaps.groupby("cluster").first()
    assert (per["lower"] == np.maximum(per["local_lower"], per["dp_gain"])).all()
    assert (per["lower_lo"] <= per["lower"]).all() and (per["lower"] <= per["lower_hi"]).all()
    assert est.summary["epsilon"] == per["lower"].max()
    assert est.summary["upper_hi"] >= est.summary["epsilon_lo"]
    assert est.deviations.tables.shape == (3, gmfg.game.steps, 3, len(gmfg.game.ess.soe))


def test_the_bracket_adds_samples_until_its_precision_or_cap(gmfg, tmp_path):
    """The precision loop adds batches of samples and stops when the lower bound is resolved
    or at the cap; the bracket it returns carries both bounds on every sample drawn."""
    from cosim.studies.gap_statistics import Precision

    loose = estimate_epsilon_nash(gmfg, 5, 3, 7, tmp_path / "a", precision=Precision(floor=1.0))
    assert (loose.summary["replications"], loose.summary["stopped"]) == (3, "precise")
    capped = estimate_epsilon_nash(
        gmfg, 5, 3, 7, tmp_path / "b", precision=Precision(relative=1e-9, max_replications=7)
    )
    assert (capped.summary["replications"], capped.summary["stopped"]) == (6, "max_replications")
    assert len(list((tmp_path / "b" / "evaluate").glob("rep-*.parquet"))) == 6
    assert np.isfinite(capped.summary["upper"]) and capped.summary["upper_hi"] >= 0.0
