"""Golden outputs: run a fixed set of commands and save, or diff, every number they print.

A refactoring must not change what the project computes. Before it::

    python benchmarks/golden.py save /tmp/golden-before

after it::

    python benchmarks/golden.py check /tmp/golden-before

``check`` runs the same commands again and compares their ``--json`` output
(wall-clock figures and paths removed) and every table and array they wrote
(Parquet, ``.npz``, ``.json``; manifests and ``paths.json`` left out, they
hold versions, times and absolute paths) for exact equality. It prints one
JSON object: the commands, the files compared, and every difference (none
when the outputs are bit-identical); exit status 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
#: The user's data directory (docs/data.md), else the developers' copy beside the checkout:
#: ``scenarios/oahu37.toml`` names ``$COSIM_DATA_DIR/hawaii40.m``.
DATA_DIR = Path(os.environ.get("COSIM_DATA_DIR") or ROOT.parent / "shared" / "data")

#: name → arguments of ``cosim`` (each run with ``--json``, a fresh ``--out`` and caches).
COMMANDS: dict[str, list[str]] = {
    "solve": ["solve", "scenarios/paper_gmfg.toml", "--mode", "coc"],
    "simulate": [
        "simulate",
        "scenarios/paper_gmfg.toml",
        "--households-per-cluster",
        "20",
        "--seed",
        "7",
    ],
    "epsilon": ["epsilon", "scenarios/eps_convergence.toml", "--sizes", "2,20", "--reps", "4"],
    "epsilon_full": [
        "epsilon",
        "scenarios/eps_convergence.toml",
        "--sizes",
        "2,20",
        "--reps",
        "4",
        "--info",
        "full",
    ],
    "reference_path": [
        "simulate",
        "scenarios/default.toml",
        "--households-per-cluster",
        "3",
        "--reference-path",
    ],
    "run_pjm5": ["run", "scenarios/cosim_full_pjm5.toml"],
    "wholesale": ["wholesale", "scenarios/oahu37.toml", "--days", "3", "--seeds", "1"],
}
#: Options naming where a command keeps its caches and work files.
SCRATCH = {
    "simulate": ["--cache"],
    "epsilon": ["--cache", "--work"],
    "epsilon_full": ["--cache", "--work"],
    "reference_path": ["--cache"],
    "run_pjm5": ["--cache"],
}
#: Keys of the JSON summaries that measure time or name paths, not results.
VOLATILE = ("seconds", "out", "work", "cache", "time_s", "wall")


def _volatile(key: object) -> bool:
    return any(part in str(key).lower() for part in VOLATILE)


def _clean(value: object) -> object:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not _volatile(k)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def run_all(target: Path) -> None:
    """Run every command, keeping its cleaned JSON and its output directory under ``target``."""
    scratch = Path(tempfile.mkdtemp(prefix="golden-scratch-"))
    try:
        for name, args in COMMANDS.items():
            out = target / name
            extra = ["--out", str(out), "--json"]
            for option in SCRATCH.get(name, []):
                extra += [option, str(scratch / f"{name}{option}")]
            done = subprocess.run(
                [sys.executable, "-m", "cosim", *args, *extra],
                cwd=ROOT,
                env={**os.environ, "COSIM_DATA_DIR": str(DATA_DIR)},
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode not in (0, 1):
                raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr[-2000:]}")
            payload = json.loads(done.stdout[done.stdout.index("{") :])
            (target / f"{name}.json").write_text(
                json.dumps(_clean(payload), indent=1, sort_keys=True)
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _files(root: Path) -> dict[str, Path]:
    keep = (".parquet", ".npz", ".json")
    return {
        str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.suffix in keep and p.name not in ("manifest.json", "paths.json")
    }


def _compare(a: Path, b: Path) -> str | None:
    if a.suffix == ".parquet":
        left, right = (
            (t := pd.read_parquet(f)).drop(columns=[c for c in t if _volatile(c)]) for f in (a, b)
        )
        try:
            pd.testing.assert_frame_equal(left, right, check_exact=True)
        except AssertionError as exc:
            return str(exc).splitlines()[0] + " " + " ".join(str(exc).splitlines()[1:4])
        return None
    if a.suffix == ".npz":
        with np.load(a) as left, np.load(b) as right:
            if sorted(left.files) != sorted(right.files):
                return f"arrays {sorted(left.files)} vs {sorted(right.files)}"
            for key in left.files:
                if not np.array_equal(left[key], right[key], equal_nan=left[key].dtype.kind == "f"):
                    return f"array {key} differs"
        return None
    left = _clean(json.loads(a.read_text()))
    right = _clean(json.loads(b.read_text()))
    return None if left == right else "JSON differs"


def check(golden: Path) -> int:
    """Run again and diff against ``golden``; print a JSON report."""
    fresh = Path(tempfile.mkdtemp(prefix="golden-now-"))
    try:
        run_all(fresh)
        before, now = _files(golden), _files(fresh)
        differences = [
            {"file": name, "difference": "missing" if name not in now else diff}
            for name, path in before.items()
            if name not in now or (diff := _compare(path, now[name])) is not None
        ]
        differences += [{"file": name, "difference": "new"} for name in now if name not in before]
        report = {
            "commands": {name: " ".join(args) for name, args in COMMANDS.items()},
            "files_compared": len(before),
            "identical": not differences,
            "differences": differences,
        }
        print(json.dumps(report, indent=2))
        return 0 if not differences else 1
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "check"])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    if args.action == "save":
        args.directory.mkdir(parents=True, exist_ok=False)
        run_all(args.directory)
        print(json.dumps({"saved": str(args.directory), "files": len(_files(args.directory))}))
        return 0
    return check(args.directory)


if __name__ == "__main__":
    sys.exit(main())
