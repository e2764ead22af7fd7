"""``--json`` standard output is one JSON document and nothing else — C libraries included.

HiGHS prints a banner from C (file descriptor 1, past ``sys.stdout``), so these
run the command in a child process and parse its whole standard output.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PJM5 = str(ROOT / "scenarios" / "cosim_full_pjm5.toml")


def _stdout(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cosim", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return done.stdout


def test_solve_with_a_wholesale_link_prints_only_json(tmp_path):
    out = _stdout("solve", PJM5, "--json", "--out", str(tmp_path / "r"))
    assert json.loads(out)["mode"] == "coc"  # the whole of stdout parses


def test_simulate_with_a_wholesale_link_prints_only_json(tmp_path):
    out = _stdout(
        "simulate",
        PJM5,
        "--json",
        "--households-per-cluster",
        "2",
        "--out",
        str(tmp_path / "r"),
        "--cache",
        str(tmp_path / "cache"),
    )
    assert "lmp_realised" in json.loads(out)


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["compare-modes"],
        ["run"],
        ["epsilon", "--sizes", "2,4", "--reps", "2", "--workers", "1"],
    ],
    ids=lambda c: c[0],
)
def test_every_game_command_prints_only_json(tmp_path, command):
    """``cosim <cmd> scenarios/cosim_full_pjm5.toml --json … | python -m json.tool``."""
    extra = [] if command[0] == "validate" else ["--out", str(tmp_path / "r")]
    if command[0] in ("run", "epsilon"):
        extra += ["--cache", str(tmp_path / "cache")]
    if command[0] == "epsilon":
        extra += ["--work", str(tmp_path / "w")]
    json.loads(_stdout(command[0], PJM5, "--json", *command[1:], *extra))


def test_wholesale_prints_only_json(tmp_path):
    """The wholesale experiment on the built-in PJM 5-bus case (no network file)."""
    text = (ROOT / "scenarios" / "oahu37.toml").read_text(encoding="utf-8")
    scenario = tmp_path / "pjm5_wholesale.toml"
    scenario.write_text(re.sub(r'(?m)^file = ".*"$', "", text), encoding="utf-8")
    out = _stdout(
        "wholesale", str(scenario), "--days", "2", "--seeds", "1", "--json",
        "--out", str(tmp_path / "r"),
    )  # fmt: skip
    json.loads(out)


def test_highs_objects_are_made_without_a_banner():
    code = (
        "import highspy\n"
        "from market.dispatch import c_stdout_silenced\n"
        "with c_stdout_silenced():\n"
        "    highspy.Highs()\n"
        "print('after')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout == "after\n"
