"""Limits checked before work starts: what cannot fit is one line and status 2, within seconds.

Each oversized input below used to run for minutes (or a whole solve) before
failing — or, for 2⁶³−1 households, to store a wrapped-around count. Now the
command refuses it right after reading the scenario: one line naming the
field or option, its value and the limit, exit status 2, no result directory.
The memory compared with is fixed by ``COSIM_MEMORY_LIMIT`` so that the
answers do not depend on the machine the tests run on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cosim.scenario.game import load_scenario
from cosim.scenario.limits import (
    MEMORY_VARIABLE,
    NOTE_SECONDS,
    MemoryLimit,
    limit_violations,
    parse_bytes,
)
from cosim_cli import main as cli
from cosim_cli.limits import SOLVES, run_costs
from models.config import DATA_DIR_VARIABLE
from tests.network_data import needs_hawaii40

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p for p in (ROOT / "scenarios").glob("*.toml") if "[network]" not in p.read_text())
#: The memory the tests pretend the machine has.
MEMORY = "16GiB"
#: Longest a refusal may take in-process (the imports are done): it solves nothing.
QUICK_S = 5.0


@pytest.fixture(autouse=True)
def _fixed_memory(monkeypatch):
    monkeypatch.setenv(MEMORY_VARIABLE, MEMORY)


def _scenario(tmp_path: Path, body: str) -> str:
    path = tmp_path / "big.toml"
    path.write_text('[scenario]\nname = "big"\n' + body)
    return str(path)


def _command(command: str, scenario: str, tmp_path: Path) -> list[str]:
    """``command`` on ``scenario`` with every directory it could write inside ``tmp_path``."""
    args = [command, scenario]
    if command != "validate":
        args += ["--out", str(tmp_path / "out")]
    if command in ("simulate", "run", "epsilon"):
        args += ["--cache", str(tmp_path / "cache")]
    if command == "epsilon":  # two households per cluster: the replications are not the subject
        args += ["--work", str(tmp_path / "work"), "--sizes", "2"]
    return args


#: The sub-commands' handlers: a refusal must come before any of them is called.
HANDLERS = (
    "cmd_validate",
    "cmd_solve",
    "cmd_compare_modes",
    "cmd_simulate",
    "cmd_run",
    "cmd_epsilon",
)


@pytest.fixture
def refused(monkeypatch, capsys, tmp_path) -> Callable[[list[str]], str]:
    """Runs a command that must be refused: status 2 within seconds, before its handler is
    called (nothing solved), nothing written, one line — which it returns."""

    def started(*_: object) -> int:
        raise AssertionError("the command started its work")

    for name in HANDLERS:
        monkeypatch.setattr(cli, name, started)

    def run(args: list[str]) -> str:
        start = time.perf_counter()
        status = cli.main(args)
        seconds = time.perf_counter() - start
        captured = capsys.readouterr()
        assert status == 2, captured
        assert seconds < QUICK_S
        assert sorted(p.name for p in tmp_path.iterdir()) == ["big.toml"]
        lines = (captured.out + captured.err).strip().splitlines()
        assert len(lines) == 1, lines
        return lines[0]

    return run


TOO_BIG = {
    "households_1e12": (
        "[clusters]\ncount = 10\nhouseholds = 1000000000000\n",
        "clusters.households: 1000000000000: ",
        "less than or equal to 1000000000",
    ),
    "households_int64_max": (
        "[clusters]\ncount = 10\nhouseholds = 9223372036854775807\n",
        "clusters.households: 9223372036854775807: ",
        "less than or equal to 1000000000",
    ),
    "households_one_of_a_list": (
        "[clusters]\ncount = 2\nhouseholds = [10, 10000000000]\n",
        "clusters.households[1]: 10000000000: ",
        "less than or equal to 1000000000",
    ),
    "subnormal_step": ("[time]\ndt_h = 5e-324\n", "time.dt_h: 5e-324: ", "at most 2880 steps"),
}

TOO_MUCH_MEMORY_TO_SOLVE = {
    "clusters_10000": ("[clusters]\ncount = 10000\n", "clusters.count: 10000: "),
    "soe_points_10001": ("[solver]\nsoe_points = 10001\n", "solver.soe_points: 10001: "),
    "ev_soe_points_10001": (
        "[solver]\nev_soe_points = 10001\n",
        "solver.ev_soe_points: 10001: ",
    ),
}


@pytest.mark.parametrize("command", ["validate", "solve", "run"])
@pytest.mark.parametrize("case", TOO_BIG, ids=list(TOO_BIG))
def test_values_beyond_the_format_are_refused_in_one_line(case, command, tmp_path, refused):
    body, head, rule = TOO_BIG[case]
    scenario = _scenario(tmp_path, body)
    line = refused(_command(command, scenario, tmp_path))
    assert line.startswith(f"{scenario}: {head}") and rule in line


@pytest.mark.parametrize("command", ["validate", "solve", "compare-modes", "run", "epsilon"])
@pytest.mark.parametrize("case", TOO_MUCH_MEMORY_TO_SOLVE, ids=list(TOO_MUCH_MEMORY_TO_SOLVE))
def test_a_solve_that_cannot_fit_is_refused_before_it_starts(case, command, tmp_path, refused):
    body, head = TOO_MUCH_MEMORY_TO_SOLVE[case]
    scenario = _scenario(tmp_path, body)
    line = refused(_command(command, scenario, tmp_path))
    assert line.startswith(f"{scenario}: {head}"), line
    assert "needs about" in line and line.endswith(f"; {MEMORY_VARIABLE} is 16 GiB")


@pytest.mark.parametrize("command", ["validate", "simulate", "run"])
def test_a_population_that_cannot_fit_is_refused_before_the_solve(command, tmp_path, refused):
    scenario = _scenario(tmp_path, "[clusters]\ncount = 10\nhouseholds = 100000000\n")
    line = refused(_command(command, scenario, tmp_path))
    assert line.startswith(f"{scenario}: clusters.households: 100000000: simulating needs about")
    assert "(1000000000 households × 1 day of 96 steps)" in line
    assert line.endswith(f"{MEMORY_VARIABLE} is 16 GiB")


def test_a_solve_alone_does_not_simulate_the_households(tmp_path):
    """Only the clusters' shares enter the mean-field game: `solve` fits whatever N_p."""
    scenario = _scenario(tmp_path, "[clusters]\ncount = 10\nhouseholds = 100000000\n")
    for command, expected in (("solve", False), ("compare-modes", False), ("run", True)):
        args = cli.build_parser().parse_args(_command(command, scenario, tmp_path))
        costs = run_costs(args, load_scenario(scenario).scenario)
        assert bool(limit_violations(costs, MemoryLimit(16 * 2**30, "has"))) == expected


@pytest.mark.parametrize(
    ("body", "options", "head"),
    [
        ("", ["--households-per-cluster", "2000000"], "--households-per-cluster: 2000000: "),
        ("", ["--households-per-cluster", "100000", "--days", "365"], "--households-per-cluster: "),
        ("", ["--days", "3650", "--households-per-cluster", "20000"], "--households-per-cluster: "),
        # ten years of 45-second steps: the records of 7 million steps, not the households
        ("[time]\ndt_h = 0.0125\n", ["--days", "3650", "--households-per-cluster", "1"], "--days"),
        ("[simulation]\nhouseholds_per_cluster = 2000000\n", [], "simulation.households_per_"),
    ],
    ids=["households", "households_and_days", "ten_years", "ten_years_of_short_steps", "field"],
)
def test_simulate_options_are_priced_too(body, options, head, tmp_path, refused):
    scenario = _scenario(tmp_path, "[clusters]\ncount = 10\nhouseholds = 50\n" + body)
    args = [*_command("simulate", scenario, tmp_path), *options]
    line = refused(args)
    assert line.startswith(f"{scenario}: {head}") and "simulating needs about" in line


@pytest.mark.parametrize(
    ("option", "value", "limit"),
    [("--days", "1000000", "3650"), ("--households-per-cluster", "100000000", "10000000")],
)
def test_simulate_options_beyond_their_range_are_argument_errors(
    option, value, limit, tmp_path, capsys
):
    scenario = _scenario(tmp_path, "")
    start = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        cli.main([*_command("simulate", scenario, tmp_path), option, value])
    assert stop.value.code == 2 and time.perf_counter() - start < QUICK_S
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert f"{option}: {value}: must be ≤ {limit}" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.toml"]


@pytest.mark.parametrize(
    ("options", "head"),
    [
        (["--sizes", "2,20000000"], "--sizes: 20000000: "),
        (["--clusters", "4,20000", "--sizes", "2"], "--clusters: 20000: "),
    ],
    ids=["sizes", "clusters"],
)
def test_epsilon_options_are_priced_too(options, head, tmp_path, refused):
    scenario = _scenario(tmp_path, '[clusters]\ncount = 4\ndistances = { kind = "line" }\n')
    line = refused([*_command("epsilon", scenario, tmp_path), *options])
    assert line.startswith(f"{scenario}: {head}") and "needs about" in line


def test_json_reports_the_limit_as_a_violation(tmp_path, capsys):
    scenario = _scenario(tmp_path, "[clusters]\ncount = 10000\n")
    assert cli.main(["validate", scenario, "--json"]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["valid"] is False
    (violation,) = report["violations"]
    assert violation["path"] == "clusters.count" and violation["value"] == 10000
    assert f"{MEMORY_VARIABLE} is 16 GiB" in violation["rule"]
    assert captured.err.count("\n") == 1


def test_a_bad_memory_limit_is_one_line(tmp_path, refused, monkeypatch):
    monkeypatch.setenv(MEMORY_VARIABLE, "plenty")
    scenario = _scenario(tmp_path, "")
    line = refused(_command("solve", scenario, tmp_path))
    rule = "not an amount of memory (like 64GiB or 500MB)"
    assert line == f"{scenario}: {MEMORY_VARIABLE}: 'plenty': {rule}"


def test_a_long_run_gets_a_note_and_is_not_refused(tmp_path, capsys):
    scenario = _scenario(tmp_path, "[clusters]\ncount = 2\n[solver]\nsoe_points = 10001\n")
    assert cli.main(["validate", scenario]) == 0
    captured = capsys.readouterr()
    assert captured.out == "OK\n"
    (note,) = captured.err.strip().splitlines()
    assert note.startswith("cosim validate: note: cosim run will take about ")
    assert "solving 3 equilibria" in note and "continuous-game check" in note
    assert cli.main(["validate", scenario, "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_the_small_scenario_runs_untouched(scenario, tmp_path, capsys):
    assert cli.main(["validate", str(scenario)]) == 0
    assert capsys.readouterr() == ("OK\n", "")
    assert cli.main(["solve", str(scenario), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert (tmp_path / "out" / "equilibrium.npz").exists()


@pytest.mark.parametrize("command", list(SOLVES))
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_fits_a_small_machine_and_takes_minutes(path, command, monkeypatch):
    """4 GiB and no note, for every command on the scenarios the repository ships."""
    if f"${DATA_DIR_VARIABLE}" in path.read_text(encoding="utf-8"):
        monkeypatch.setenv(DATA_DIR_VARIABLE, str(needs_hawaii40().parent))
    options = _command(command, str(path), Path("/nonexistent"))
    if command == "epsilon":
        options = options[:-2]  # the default --sizes
    args = cli.build_parser().parse_args(options)
    costs = run_costs(args, load_scenario(path).scenario)
    assert limit_violations(costs, MemoryLimit(parse_bytes("4GiB"), "this machine has")) == []
    assert sum(c.seconds for c in costs) < NOTE_SECONDS
