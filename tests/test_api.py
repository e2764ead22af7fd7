"""The Python API: every result object saves, reloads to the same tables, and matches the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import cosim
from cosim_cli.main import main

ROOT = Path(__file__).resolve().parents[1]

SMALL_GAME = """
seed = 5
[scenario]
name = "api-small"
[time]
dt_h = 1.0
[clusters]
count = 2
households = 10
distances = { kind = "line" }
[solver]
soe_points = 21
"""

SMALL_MARKET = """
seed = 3
seeds = 1
[scenario]
name = "api-market"
[time]
days = 2
[metrics]
last_days = 1
settle_days = 1
"""


def assert_same_tables(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert list(a) == list(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


@pytest.fixture(scope="module")
def equilibrium(tmp_path_factory: pytest.TempPathFactory) -> cosim.EquilibriumResult:
    path = tmp_path_factory.mktemp("scenario") / "small.toml"
    path.write_text(SMALL_GAME, encoding="utf-8")
    loaded = cosim.load_scenario(path)
    return cosim.solve_equilibrium(cosim.build_game(loaded.scenario, loaded.base_dir), "coc")


def test_the_package_exports_what_it_promises():
    for name in cosim.__all__:
        assert getattr(cosim, name) is not None, name
    for name in ("load_scenario", "solve_equilibrium", "simulate", "run_wholesale"):
        assert name in cosim.__all__
    assert "estimate_epsilon_nash" in cosim.__all__


def test_equilibrium_round_trip(equilibrium, tmp_path):
    tables = equilibrium.to_pandas()
    assert set(tables) == {"prices", "clusters", "history"}
    equilibrium.save(tmp_path / "eq")
    again = cosim.EquilibriumResult.load(tmp_path / "eq")
    assert_same_tables(tables, again.to_pandas())
    assert again.mode == equilibrium.mode and again.converged == equilibrium.converged


def test_simulation_round_trip(equilibrium, tmp_path):
    run = cosim.simulate(equilibrium, households_per_cluster=4, seed=2)
    tables = run.to_pandas()
    assert set(tables) >= {"aggregates", "households", "events", "trajectories", "market"}
    run.save(tmp_path / "sim")
    again = cosim.SimulationResult.load(tmp_path / "sim")
    assert_same_tables(tables, again.to_pandas())
    assert again.checks == run.checks and again.seconds == run.seconds


def test_wholesale_round_trip_and_same_numbers_as_the_command(tmp_path, capsys):
    path = tmp_path / "market.toml"
    path.write_text(SMALL_MARKET, encoding="utf-8")
    result = cosim.run_wholesale(path)
    tables = result.to_pandas()
    assert {"steps", "lmp", "replications", "aggregators"} <= set(tables)
    result.save(tmp_path / "saved")
    again = cosim.ExperimentResult.load(tmp_path / "saved")
    assert_same_tables(tables, again.to_pandas())
    assert again.summary()["mean_over_seeds"] == result.summary()["mean_over_seeds"]
    # the command writes the same directory layout, so its results reload too
    assert main(["wholesale", str(path), "--out", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    from_cli = cosim.ExperimentResult.load(tmp_path / "cli").to_pandas()
    pd.testing.assert_frame_equal(from_cli["lmp"], tables["lmp"], check_exact=True)


def test_wholesale_overrides_and_no_storage(tmp_path):
    path = tmp_path / "market.toml"
    path.write_text(SMALL_MARKET, encoding="utf-8")
    result = cosim.run_wholesale(cosim.load_wholesale_scenario(path), days=2, storage=False)
    tables = result.to_pandas()
    assert "aggregators" not in tables and set(tables["steps"]["run"]) == {"without_storage"}
    result.save(tmp_path / "saved")
    assert_same_tables(tables, cosim.ExperimentResult.load(tmp_path / "saved").to_pandas())


def test_epsilon_study_round_trip_and_reuse_of_the_law(equilibrium, tmp_path):
    study = cosim.estimate_epsilon_nash(equilibrium, sizes=[2, 4], reps=2, work=tmp_path / "w")
    table = study.table
    assert list(table["households_per_cluster"]) == [2, 4]
    assert list(table["households"]) == [4, 8]
    assert study.law["label"] == "gmfg" and study.law["mode"] == "coc"
    study.save(tmp_path / "study")
    again = cosim.EpsilonStudy.load(tmp_path / "study")
    assert_same_tables(study.to_pandas(), again.to_pandas())
    # the rate (with the upper bound's nested under "upper") survives, NaNs included
    assert json.dumps(study.rate, sort_keys=True) == json.dumps(again.rate, sort_keys=True)
    # the work directory makes a second call a resume: same numbers, nothing recomputed
    resumed = cosim.estimate_epsilon_nash(equilibrium, sizes=[2], reps=2, work=tmp_path / "w")
    pd.testing.assert_frame_equal(
        resumed.gaps, study.gaps[study.gaps["households_per_cluster"] == 2], check_exact=True
    )


def test_epsilon_study_from_a_scenario_file(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL_GAME, encoding="utf-8")
    study = cosim.estimate_epsilon_nash(path, sizes=[2], reps=2, law="flat")
    assert study.law["label"] == "flat" and len(study.table) == 1
    assert study.table["epsilon"].iloc[0] > 0  # the flat-price law is not an equilibrium


def test_readme_python_example_runs(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has a Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[0] == "True"
