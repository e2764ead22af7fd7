"""The finite-N co-simulation: paths agree, books balance, EV events are exact, prices converge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cosim.sim.population import draw_ev_schedule, init_population
from cosim.sim.simulation import SimulationResult, price_error, simulate, simulate_and_save
from models.battery import feasible, grid_power, stored_change
from models.config import GameConfig
from models.equilibrium import solve_equilibrium
from models.feedback import FeedbackLaw, law_control
from models.game import build_game, stage_prices


@pytest.fixture(scope="module")
def equilibrium():
    config = GameConfig.model_validate(
        {"seed": 5, "clusters": {"count": 3, "households": 10, "distances": {"kind": "line"}}}
    )
    return solve_equilibrium(build_game(config), "coc")


def test_compiled_and_reference_paths_give_identical_trajectories(equilibrium):
    fast = simulate(equilibrium, households_per_cluster=4, seed=1, record=4)
    slow = simulate(equilibrium, households_per_cluster=4, seed=1, record=4, reference=True)
    pd.testing.assert_frame_equal(fast.trajectories, slow.trajectories, check_exact=True)
    pd.testing.assert_frame_equal(fast.households, slow.households, check_exact=True)
    pd.testing.assert_frame_equal(fast.aggregates, slow.aggregates, check_exact=True)


def test_the_engine_clears_by_the_solvers_rule(equilibrium):
    game = equilibrium.game
    agg = simulate(equilibrium, households_per_cluster=5, seed=3).aggregates

    def per_cluster(column: str) -> np.ndarray:  # (M, K), as the solver holds them
        return agg[column].to_numpy().reshape(game.steps, game.n_clusters).T

    solver = stage_prices(game, equilibrium.mode, per_cluster("m_kw"))
    for column, expected in (
        ("p_rpc", solver.rpc),
        ("p_coc", solver.coc),
        ("p_stage", solver.stage),
    ):
        np.testing.assert_allclose(per_cluster(column), expected, rtol=1e-14, atol=0)


def test_simulate_and_save_writes_the_run_its_figures_and_its_summary(equilibrium, tmp_path):
    summary = simulate_and_save(equilibrium, tmp_path / "sim", households_per_cluster=4, seed=3)
    again = SimulationResult.load(tmp_path / "sim")
    run = simulate(equilibrium, households_per_cluster=4, seed=3)
    pd.testing.assert_frame_equal(again.households, run.households, check_exact=True)
    assert sorted(p.name for p in (tmp_path / "sim" / "figures").iterdir()) == [
        "household_costs.png",
        "realised_prices.png",
    ]
    assert summary["households"] == 12 and summary["path"] == "compiled"
    assert summary["price_error"] == price_error(run, equilibrium)
    assert summary["checks"] == run.checks


def test_same_seed_same_tables_other_seed_other_tables(equilibrium):
    a = simulate(equilibrium, households_per_cluster=30, seed=7)
    b = simulate(equilibrium, households_per_cluster=30, seed=7)
    c = simulate(equilibrium, households_per_cluster=30, seed=8)
    for name in ("aggregates", "households", "events", "trajectories", "market"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert not np.array_equal(a.households["cost"], c.households["cost"])


def test_books_balance_and_states_stay_in_bounds(equilibrium):
    for mode in ("standalone", "rpc", "coc"):
        res = simulate(equilibrium, households_per_cluster=50, seed=2, days=2, mode=mode)
        assert res.checks["energy_balance"] <= 1e-9
        assert res.checks["money_balance"] <= 1e-9
        assert res.checks["soe_bound_excess_kwh"] <= 0.0
        traj = res.trajectories
        game = equilibrium.game
        assert traj["ess_soe_kwh"].between(game.ess.soe[0], game.ess.soe[-1]).all()
        assert traj["ev_soe_kwh"].between(game.ev.soe[0], game.ev.soe[-1]).all()
    agg = res.aggregates
    # in CoC mode the households' net exchange is the grid's net import, step by step
    net = (agg["bought_kwh"] - agg["sold_kwh"]).groupby(agg["step"]).sum()
    grid = (agg["grid_import_kwh"] - agg["grid_export_kwh"]).groupby(agg["step"]).sum()
    assert np.allclose(net, grid, rtol=1e-12, atol=1e-9)
    assert len(res.market) == 48  # hourly market intervals over two days


def test_ev_departure_off_the_grid_is_logged_and_its_partial_step_is_exact(equilibrium):
    game = equilibrium.game
    per_cluster, seed = 6, 4
    res = simulate(equilibrium, households_per_cluster=per_cluster, seed=seed, record=per_cluster)
    # the schedule the run drew, recomputed independently from the same seed
    population = init_population(game, np.full(game.n_clusters, per_cluster), seed)
    schedule = draw_ev_schedule(game, population, seed, day=0)
    drawn = dict(zip(schedule.households.tolist(), schedule.departure_h.tolist(), strict=True))
    law = FeedbackLaw.from_equilibrium(equilibrium)
    ev = game.ev.battery
    dt = game.dt_h
    departures = res.events[res.events["kind"] == "departure"]
    assert sorted(departures["household"]) == sorted(drawn)
    for _, event in departures.iterrows():
        t, i = float(event["time_h"]), int(event["household"])
        assert t == drawn[i]  # exactly the drawn time, off the control grid
        step = int(t // dt)
        assert step * dt < t < (step + 1) * dt
        rows = res.trajectories[res.trajectories["household"] == i].set_index("step")
        before = rows.loc[step - 1, "ev_soe_kwh"]
        u = feasible(
            ev,
            law_control(law.ev[population.cluster[i], step], *law.ev_grid[:2], before),
            before,
            dt,
        )
        hours = t - step * dt
        # the SoE at departure and the meter's energy are the law's control over the
        # connected part of the step, exactly
        expected_soe = before + stored_change(ev, u, hours)
        assert event["soe_kwh"] == pytest.approx(expected_soe, abs=1e-12)
        assert rows.loc[step, "ev_energy_kwh"] == pytest.approx(
            grid_power(ev, u) * hours, abs=1e-12
        )


def test_realised_prices_approach_the_mean_field_as_households_grow(equilibrium):
    errors = [
        np.mean(
            [
                price_error(simulate(equilibrium, households_per_cluster=n, seed=s), equilibrium)
                for s in (1, 2)
            ]
        )
        for n in (20, 200, 2000)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.5 * errors[0]
