"""The finite-N one-market run: every layer in one simulation, balanced every market interval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.sim.one_market import OneMarketRun
from cosim_cli.main import main
from cosim_cli.one_market import _lines
from tests.models.test_one_market import scenario, solve, three_buses

DAYS = 3


@pytest.fixture(scope="module")
def run():
    s = scenario()
    s = s.model_copy(update={"time": s.time.model_copy(update={"days": DAYS})})
    _market, eq = solve(three_buses(cost_a=0.02), s)
    assert eq.converged
    simulation = OneMarketRun(eq, s, households=[300, 300])
    return s, eq, simulation, simulation.run()


def test_energy_balances_across_every_layer_at_every_interval(run):
    *_, result = run
    assert result.checks["dispatch_balance_mw"] <= 1e-9
    assert result.checks["demand_composition_mw"] <= 1e-9
    assert result.checks["import_metered_mw"] <= 1e-9
    for coc in result.cocs:
        assert coc.checks["energy_balance"] <= 1e-12 and coc.checks["money_balance"] <= 1e-12


def test_one_lmp_per_market_interval_prices_all_its_steps(run):
    _s, eq, simulation, result = run
    n = simulation.steps_per_interval
    assert n == 2  # hourly control steps, 2-hour market intervals
    for c, member in enumerate(eq.market.cocs):
        p_grid = simulation.sims[c].rec.grid_price.reshape(-1, n)
        expected = result.record.lmp[:, member.bus] / 1000.0 + member.retail_adder
        np.testing.assert_allclose(p_grid, np.repeat(expected[:, None], n, axis=1), atol=1e-15)


def test_the_aggregators_learn_their_beliefs_by_eq_8(run):
    s, eq, _simulation, result = run
    rec, slots = result.record, eq.market.intervals
    beta = s.aggregators.learning.belief_rate
    bus = eq.market.aggregators.bus
    # the belief of a slot before its interval on day d + 1 follows from day d's and its LMP
    for g in range(slots, DAYS * slots):
        before, observed = rec.belief[g - slots], rec.lmp[g - slots][bus]
        np.testing.assert_allclose(rec.belief[g], (1 - beta) * before + beta * observed)
    np.testing.assert_allclose(rec.belief[:slots].T, eq.beliefs)  # they start at the fixed point


def test_the_run_follows_the_mean_field_and_repeats_with_its_seed(run):
    s, eq, _simulation, result = run
    imports = result.record.imports_mw.reshape(DAYS, -1, len(eq.market.cocs)).mean(axis=0)
    # 300 simulated households stand for 20 000: the realised import tracks the expected one
    assert np.max(np.abs(imports - eq.imports_mw.T)) < 0.15 * np.max(np.abs(eq.imports_mw))
    again = OneMarketRun(eq, s, households=[300, 300]).run()
    np.testing.assert_array_equal(again.record.lmp, result.record.lmp)
    np.testing.assert_array_equal(again.record.storage_mw, result.record.storage_mw)


GAME = """
seed = 11
[scenario]
name = "small"
[time]
dt_h = 1.0
[clusters]
count = 2
households = 20
distances = { kind = "line" }
[solver]
soe_points = 41
"""

ONE_MARKET = """
seed = 3
[scenario]
name = "om-small"
[time]
days = 2
market_interval_h = 2.0
[network]
[rest]
load_peak_fraction = 0.6
[[coc]]
bus = "B"
game_file = "game.toml"
households = 400
[[coc]]
bus = "C"
game_file = "game.toml"
households = 400
[aggregators]
prosumers_per_mw = 5.0
[outer]
max_iterations = 2         # the command's plumbing, not the fixed point (tests/models)
noise_draws = 4
import_points = 21
"""


def test_cosim_run_writes_the_tables_and_a_json_summary(tmp_path, capsys):
    (tmp_path / "game.toml").write_text(GAME, encoding="utf-8")
    path = tmp_path / "om.toml"
    path.write_text(ONE_MARKET, encoding="utf-8")
    out = tmp_path / "result"
    code = main(["run", str(path), "--out", str(out), "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == (0 if summary["fixed_point"]["converged"] else 1)
    assert summary["run"]["checks"]["dispatch_balance_mw"] <= 1e-9
    assert set(summary["mean_field_lmp"]) == {"A", "B", "C", "D", "E"}
    lmp = pd.read_parquet(out / "lmp.parquet")
    assert len(lmp) == 2 * 12 * 5  # days × intervals × buses
    for name in ("cocs", "aggregators", "dispatch", "fixed_point", "mean_field_lmp"):
        assert not pd.read_parquet(out / f"{name}.parquet").empty
    for c in (0, 1):
        assert (out / f"coc-{c}" / "aggregates.parquet").is_file()
    for fig in ("lmp", "imports", "storage", "fixed_point"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0
    assert json.loads((out / "manifest.json").read_text())["scenario_name"] == "om-small"
    assert Path(summary["out"]) == out


def test_responses_solved_in_worker_processes_give_the_same_fixed_point():
    from cosim.studies.montecarlo import worker_pool
    from models.one_market import build_one_market, solve_one_market
    from tests.models.conftest import small_config

    s = scenario(max_iterations=3)
    cfg = small_config()
    market = build_one_market(s, three_buses(0.02), (1, 2), (0,), ((cfg, None), (cfg, None)))
    serial = solve_one_market(market, s)
    with worker_pool(2) as pool:
        parallel = solve_one_market(market, s, map_tasks=pool.map)
    np.testing.assert_array_equal(parallel.imports_mw, serial.imports_mw)
    np.testing.assert_array_equal(parallel.lmp, serial.lmp)
    pd.testing.assert_frame_equal(pd.DataFrame(parallel.history), pd.DataFrame(serial.history))


def test_the_comparisons_are_paired_runs_side_by_side(tmp_path, capsys):
    (tmp_path / "game.toml").write_text(GAME, encoding="utf-8")
    path = tmp_path / "om.toml"
    path.write_text(ONE_MARKET + "[compare]\nflexibility = true\nstorage = true\n", "utf-8")
    out = tmp_path / "result"
    code = main(["run", str(path), "--out", str(out), "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == (0 if summary["converged_all"] else 1)
    table = pd.read_parquet(out / "comparison.parquet")
    assert list(table["variant"]) == ["as_given", "no_flexibility", "no_storage", "neither"]
    assert list(table["flexible_cocs"]) == [2, 0, 2, 0]
    assert list(table["aggregators"]) == [1, 1, 0, 0]
    assert [r["variant"] for r in summary["comparison"]] == list(table["variant"])
    assert summary["comparison"][0]["ex_post_cost"] == pytest.approx(summary["run"]["ex_post_cost"])
    assert table["intervals_paired"].nunique() == 1  # the same intervals in every row
    # nothing is scarce in these small runs: the paired cost is the whole cost
    assert table["scarcity_intervals"].sum() == 0 and table["intervals_paired"].iloc[0] == 24
    np.testing.assert_allclose(table["ex_post_cost_paired"], table["ex_post_cost"], rtol=1e-12)
    assert (out / "figures" / "comparison.png").stat().st_size > 0
    printed = _lines(summary)  # what the command prints without --json
    assert [line.split()[0] for line in printed[-5:-1]] == list(table["variant"])
    cocs = {v: pd.read_parquet(out / "variants" / v / "cocs.parquet") for v in table["variant"][1:]}
    assert pd.read_parquet(out / "variants" / "neither" / "aggregators.parquet").empty
    # Paired: inflexible households meter the same energy whatever the prices, on the same
    # seed, so both runs without flexibility import the same, interval by interval.
    np.testing.assert_array_equal(cocs["no_flexibility"]["import_mw"], cocs["neither"]["import_mw"])
    assert not np.array_equal(cocs["no_storage"]["import_mw"], cocs["neither"]["import_mw"])


def test_epsilon_of_one_cocs_law_at_the_outer_fixed_point(tmp_path, capsys):
    (tmp_path / "game.toml").write_text(GAME, encoding="utf-8")
    path = tmp_path / "om.toml"
    path.write_text(ONE_MARKET, encoding="utf-8")
    out, work = tmp_path / "eps", tmp_path / "work"
    argv = ["epsilon", str(path), "--coc", "1", "--sizes", "2,6", "--reps", "4"]
    code = main([*argv, "--out", str(out), "--work", str(work), "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["coc"] == 1 and summary["bus"] == "C" and summary["mode"] == "coc"
    assert "left out" in summary["setting"]
    table = pd.read_parquet(out / "epsilon.parquet")
    assert list(table["households_per_cluster"]) == [2, 6]
    assert np.all(np.isfinite(table["upper"])) and np.all(table["upper"] >= table["epsilon"])
    assert (out / "epsilon.png").stat().st_size > 0
    code = main([*argv, "--out", str(tmp_path / "again"), "--work", str(work), "--quiet"])
    printed = capsys.readouterr().out.splitlines()
    assert code == 0 and printed[0].startswith("coc[1] at C, outer fixed point ")
    state = "converged" if summary["outer_fixed_point"]["converged"] else "NOT converged"
    assert f"outer fixed point {state}" in printed[0]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--coc", "2"], "--coc 2: the scenario has coc[0]..coc[1]"),
        (["--clusters", "2,4"], "--clusters: a one-market CoC's clusters are its game file's"),
        (["--mode", "rpc"], "--mode rpc: a one-market scenario's laws are solved in coc"),
    ],
)
def test_epsilon_options_a_one_market_scenario_cannot_take_are_refused(
    tmp_path, capsys, options, expected
):
    (tmp_path / "game.toml").write_text(GAME, encoding="utf-8")
    path = tmp_path / "om.toml"
    path.write_text(ONE_MARKET, encoding="utf-8")
    out = tmp_path / "eps"
    assert main(["epsilon", str(path), *options, "--out", str(out), "--quiet"]) == 2
    assert expected in capsys.readouterr().err
    assert not out.exists()
    assert main(["epsilon", str(tmp_path / "game.toml"), "--coc", "0", "--quiet"]) == 2
    assert "--coc: only for a one-market scenario" in capsys.readouterr().err
