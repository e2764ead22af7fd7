"""Result directories: written atomically, each with a manifest.

Every command writes its results into a fresh temporary directory beside the
target and renames it into place only once everything is on disk, so a crash
(or bad input) never leaves a half result that looks whole, and a finished
result already at the target stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cosim.scenario.game import LoadedScenario
    from cosim.scenario.wholesale import LoadedWholesale

_PACKAGES = (
    "prosumer-cosim",
    "numpy",
    "scipy",
    "numba",
    "pandas",
    "pyarrow",
    "pydantic",
    "pvlib",
    "demandlib",
    "mesa",
    "simpy",
    "pyomo",
    "highspy",
    "matplotlib",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on."""
    versions = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    """The source tree's git commit, when run from a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def manifest(
    loaded: LoadedScenario | LoadedWholesale, command: str, extra: dict | None = None
) -> dict:
    """What identifies a result: scenario, its hash, seed, versions, commit, time.

    Works for both scenario formats (each has a name, a seed and a file hash).
    """
    scenario = loaded.scenario
    return {
        "command": command,
        "scenario_name": scenario.scenario.name,
        "scenario_file": None if loaded.path is None else str(loaded.path),
        "scenario_sha256": loaded.sha256,
        "seed": scenario.seed,
        "scenario": json.loads(scenario.model_dump_json()),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **(extra or {}),
    }


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds.

    On an exception the temporary directory is removed and ``target`` is left
    exactly as it was.
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    retired = None
    if target.exists():
        retired = target.parent / f".{target.name}.old-{os.getpid()}"
        target.rename(retired)
    staging.rename(target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as indented JSON."""
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
