"""Where a result came from: the tool, package versions, the source tree's commit, the time.

Every result directory this tool writes holds a ``manifest.json``. The
``.save(directory)`` of a result object writes one with what the object knows
(:func:`write_manifest`); a ``cosim`` command writes its richer one — scenario
file, its hash, the command — over it afterwards
(:func:`cosim.io.results.manifest`).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = [
    "MANIFEST",
    "TOOL",
    "created_utc",
    "git_commit",
    "git_dirty",
    "package_versions",
    "provenance",
    "write_manifest",
]

#: Written into every manifest: how a result directory of this tool is recognised.
TOOL = "prosumer-cosim"
#: The manifest's file name in a result directory.
MANIFEST = "manifest.json"

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


def _git(*args: str) -> str | None:
    """Output of a git command in the source tree; None outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit() -> str | None:
    """The source tree's git commit, when run from a checkout."""
    out = _git("rev-parse", "HEAD")
    if out is None:
        return None
    return out.strip() or None


def git_dirty() -> bool | None:
    """Whether tracked files of the source tree differ from its commit (None: not a checkout).

    A result computed from uncommitted code cannot be reproduced from the
    commit alone; the manifest says so.
    """
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def created_utc() -> str:
    """The current time in UTC, ISO 8601 to the second: a manifest's ``created_utc``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def provenance() -> dict[str, object]:
    """What every manifest holds about the software: versions, git commit and state, time."""
    return {
        "versions": package_versions(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "created_utc": created_utc(),
    }


def write_manifest(directory: str | Path, saved: str, known: dict[str, object]) -> None:
    """Write ``manifest.json`` into ``directory``: what was saved, what it knows, provenance.

    Parameters
    ----------
    directory
        The result directory (it exists).
    saved
        What was saved: the result object's class name.
    known
        What the object knows about its run — its seed, its scenario or game
        configuration, … — as JSON-ready values.
    """
    payload = {"tool": TOOL, "saved": saved, **known, **provenance()}
    text = json.dumps(payload, indent=2, default=str) + "\n"
    (Path(directory) / MANIFEST).write_text(text, encoding="utf-8")
