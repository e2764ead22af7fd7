"""``--json`` standard output is one JSON document and nothing else — C libraries included.

HiGHS prints a banner from C (file descriptor 1, past ``sys.stdout``), so these
run the command in a child process and parse its whole standard output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
