"""Bad inputs and faults, tried as a user would: one line on stderr, the exit status, nothing lost.

Each case runs ``cosim`` in a directory holding the user's own files (a
scenario, a folder of notes, an earlier result of the tool) and asserts the
exit status, that standard error says what is wrong in one line naming the
field or option, that standard output is empty (``validate`` reports on it),
and that no file outside ``--out`` was created, changed or removed — nor
``--out`` itself touched, since nothing is written when the input is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cosim_cli.main import main
from tests.cosim_cli.conftest import SMALL
from tests.cosim_cli.test_wholesale import SMALL as WHOLESALE

#: The paper's time grid (15-minute steps): what a game of this size costs is refused up front.
PAPER_GRID = """seed = 3
[scenario]
name = "big"
[clusters]
count = {count}
households = 10
distances = {{ kind = "line" }}
[solver]
soe_points = {points}
"""


@dataclass(frozen=True)
class Case:
    """One bad input: the command line (``{scenario}`` etc. filled in), what it must say."""

    argv: str
    message: str
    status: int = 2
    files: Callable[[Path], None] | None = None
    """Writes the files the case needs into the working directory."""


def _scenario(text: str | bytes, name: str = "bad.toml") -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / name).write_bytes(text.encode() if isinstance(text, str) else text)

    return write


def _edit(old: str, new: str) -> Callable[[Path], None]:
    """The small scenario with ``old`` replaced by ``new``, as ``bad.toml``."""
    assert old in SMALL
    return _scenario(SMALL.replace(old, new))


def _add(section: str, line: str) -> Callable[[Path], None]:
    """The small scenario with ``line`` added to ``[section]`` (the table made if missing)."""
    header = f"[{section}]\n"
    text = (
        SMALL.replace(header, header + line + "\n")
        if header in SMALL
        else (SMALL + header + line + "\n")
    )
    return _scenario(text)


def _file(name: str, content: str = "mine\n") -> Callable[[Path], None]:
    def write(root: Path) -> None:
        (root / name).write_text(content)

    return write


def _all(*writers: Callable[[Path], None]) -> Callable[[Path], None]:
    def write(root: Path) -> None:
        for writer in writers:
            writer(root)

    return write


def _earlier_result(root: Path) -> None:
    (root / "earlier").mkdir()
    (root / "earlier" / "manifest.json").write_text(
        json.dumps({"tool": "prosumer-cosim", "command": "solve"})
    )


def _wholesale(old: str = "", new: str = "") -> Callable[[Path], None]:
    """The small wholesale scenario, ``old`` replaced by ``new``, as ``ws.toml``."""
    assert old in WHOLESALE
    return _scenario(WHOLESALE.replace(old, new) if old else WHOLESALE, "ws.toml")


CASES: dict[str, Case] = {
    # ------------------------------------------------------------------ the scenario file
    "missing file": Case("solve nowhere.toml", "nowhere.toml: (file): 'nowhere.toml': cannot read"),
    "directory as file": Case("solve notes", "notes: (file): 'notes': cannot read: Is a directory"),
    "empty file": Case("solve bad.toml", "empty file", files=_scenario("")),
    "not UTF-8": Case("solve bad.toml", "not UTF-8", files=_scenario(b"\xff\xfe\x00[x")),
    "TOML syntax": Case(
        "solve bad.toml", "malformed TOML", files=_scenario("seed = 3\n[scenario\n")
    ),
    "name ..": Case(
        "validate bad.toml", "scenario.name", files=_edit('name = "small"', 'name = ".."')
    ),
    "name escaping results/": Case(
        "solve bad.toml", "scenario.name", files=_edit('name = "small"', 'name = "../../x"')
    ),
    "300-character name": Case(
        "solve bad.toml", "scenario.name", files=_edit('name = "small"', f'name = "{"a" * 300}"')
    ),
    "unknown field": Case("solve bad.toml", "colour", files=_add("clusters", 'colour = "red"')),
    "no clusters": Case("solve bad.toml", "clusters.count", files=_edit("count = 2", "count = 0")),
    "negative households": Case(
        "solve bad.toml", "clusters.households", files=_edit("households = 10", "households = -3")
    ),
    "10¹² households": Case(
        "solve bad.toml",
        "clusters.households",
        files=_edit("households = 10", "households = 1000000000000"),
    ),
    "2⁶³−1 households": Case(
        "solve bad.toml",
        "clusters.households",
        files=_edit("households = 10", f"households = {2**63 - 1}"),
    ),
    "10000 clusters": Case(
        "solve bad.toml",
        "clusters.count: 10000: solving",
        files=_scenario(PAPER_GRID.format(count=10000, points=161)),
    ),
    "10001 grid points": Case(
        "solve bad.toml",
        "solver.soe_points: 10001:",
        files=_scenario(PAPER_GRID.format(count=100, points=10001)),
    ),
    "dt_h not dividing a day": Case(
        "solve bad.toml", "time.dt_h", files=_edit("dt_h = 1.0", "dt_h = 0.7")
    ),
    "subnormal dt_h": Case(
        "validate bad.toml", "time.dt_h", files=_edit("dt_h = 1.0", "dt_h = 5e-324")
    ),
    "a word for dt_h": Case(
        "solve bad.toml", "time.dt_h", files=_edit("dt_h = 1.0", 'dt_h = "one"')
    ),
    "horizon of half a day": Case(
        "solve bad.toml", "time.horizon_h", files=_add("time", "horizon_h = 12.0")
    ),
    "negative seed": Case("solve bad.toml", "seed", files=_edit("seed = 3", "seed = -1")),
    "market interval of 1.5 steps": Case(
        "simulate bad.toml",
        "simulation.market_interval_h",
        files=_add("simulation", "market_interval_h = 1.5"),
    ),
    "distances file missing": Case(
        "solve bad.toml",
        "clusters.distances",
        files=_edit(
            'distances = { kind = "line" }', 'distances = { kind = "file", file = "d.csv" }'
        ),
    ),
    # ------------------------------------------------------------------ options
    "unknown trading mode": Case(
        "solve small.toml --mode bogus", "argument --mode: invalid choice"
    ),
    "unknown option": Case("solve small.toml --frobnicate", "unrecognized arguments: --frobnicate"),
    "--out the working directory": Case(
        "solve small.toml --out .", "--out .: is the working directory"
    ),
    "--out a parent": Case(
        "solve small.toml --out ..", "--out ..: is the working directory or one of its parents"
    ),
    "--out a file": Case("solve small.toml --out notes/todo.txt", "is a file, not a directory"),
    "--out holding other files": Case(
        "solve small.toml --out notes", "holds files that are not a result"
    ),
    "--out an earlier result": Case(
        "solve small.toml --out earlier", "pass --overwrite to replace it", files=_earlier_result
    ),
    "--out not writable": Case("solve small.toml --out /proc/cosim-out", "cannot be written"),
    "--cache a file": Case(
        "simulate small.toml --cache notes/todo.txt", "--cache notes/todo.txt: is a file"
    ),
    "--work a file": Case(
        "epsilon small.toml --work notes/todo.txt", "--work notes/todo.txt: is a file"
    ),
    "--seed -1": Case("epsilon small.toml --seed -1", "--seed: -1: must be ≥ 0"),
    "--build-reps -5": Case("epsilon small.toml --build-reps -5", "--build-reps: -5: must be ≥ 1"),
    "--workers 0": Case("epsilon small.toml --workers 0", "--workers: 0: must be ≥ 1"),
    "--reps 1": Case("epsilon small.toml --reps 1", "--reps: 1: must be ≥ 2"),
    "--sizes 2,2": Case("epsilon small.toml --sizes 2,2", "need distinct sizes"),
    "--sizes abc": Case("epsilon small.toml --sizes abc", "--sizes 'abc': need distinct sizes"),
    "--info bogus": Case("epsilon small.toml --info bogus", "argument --info: invalid choice"),
    "--floor nan": Case(
        "epsilon small.toml --floor nan", "--floor: nan: must be a finite number ≥ 0"
    ),
    "unreachable --scheduler": Case(
        "epsilon small.toml --sizes 2 --scheduler tcp://127.0.0.1:9", "no Dask scheduler answered"
    ),
    "--clusters with a fixed matrix": Case(
        "epsilon bad.toml --clusters 2,4 --sizes 2",
        "clusters.distances.kind",
        files=_edit(
            'distances = { kind = "line" }',
            'distances = { kind = "matrix", matrix = [[0.0, 1.0], [1.0, 0.0]] }',
        ),
    ),
    "--days 0": Case("simulate small.toml --days 0", "--days: 0: must be ≥ 1"),
    "--days 10⁶": Case("simulate small.toml --days 1000000", "--days"),
    "--households-per-cluster 0": Case(
        "simulate small.toml --households-per-cluster 0", "--households-per-cluster: 0: must be ≥ 1"
    ),
    # ------------------------------------------------------------------ the wholesale market
    "wholesale --days 1": Case(
        "wholesale ws.toml --days 1", "--days: 1: must be ≥ 2", files=_wholesale()
    ),
    "wholesale --learner bogus": Case(
        "wholesale ws.toml --learner bogus",
        "argument --learner: invalid choice",
        files=_wholesale(),
    ),
    "wholesale network file missing": Case(
        "wholesale ws.toml --network gone.m", "gone.m", files=_wholesale()
    ),
    "wholesale garbage MATPOWER file": Case(
        "wholesale ws.toml",
        "network.file",
        files=_all(
            _file("junk.m", "function mpc = junk\nmpc.bus = [1 2;\n"),
            _wholesale("[network]", '[network]\nfile = "junk.m"'),
        ),
    ),
    "wholesale garbage MATPOWER file, validate": Case(
        "validate ws.toml",
        "network.file",
        files=_all(
            _file("junk.m", "not a case at all\n"),
            _wholesale("[network]", '[network]\nfile = "junk.m"'),
        ),
    ),
}


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content's hash, and every directory."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        out[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_a_bad_input_is_refused_in_one_line_and_loses_nothing(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.toml").write_text(SMALL)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("the user's own file\n")
    if case.files is not None:
        case.files(tmp_path)
    before = _snapshot(tmp_path)
    argv = case.argv.split()
    try:
        status = main([*argv, "--quiet"])
    except SystemExit as stop:  # argparse's refusals
        status = int(stop.code or 0)
    printed = capsys.readouterr()
    report = printed.out if argv[0] == "validate" else printed.err
    lines = [line for line in report.splitlines() if line.strip()]
    assert status == case.status, report
    assert len(lines) == 1, lines
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in printed.err
    if argv[0] != "validate":
        assert printed.out == ""
    assert _snapshot(tmp_path) == before
    assert len(CASES) >= 40
