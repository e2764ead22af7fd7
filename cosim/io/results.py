"""Result directories: written atomically, each with a manifest.

Every command writes its results into a fresh temporary directory beside the
target and renames it into place only once everything is on disk, so a crash
(or bad input) never leaves a half result that looks whole, and a finished
result already at the target stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# the provenance helpers live in models (whose result objects write manifests too); these
# names stay importable from here
from models.provenance import TOOL, created_utc, git_commit, git_dirty, package_versions

if TYPE_CHECKING:
    from cosim.scenario.game import LoadedScenario
    from cosim.scenario.one_market import LoadedOneMarket
    from cosim.scenario.wholesale import LoadedWholesale


class OutputDirectoryError(ValueError):
    """An output directory this tool must not write: it would lose files it did not create."""


def is_result_directory(directory: Path) -> bool:
    """Whether ``directory`` holds a result of this tool (its ``manifest.json`` says so).

    Results written before the manifest named the tool are recognised by the
    fields every manifest has had (``command`` and ``scenario_sha256``).
    """
    try:
        found = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(found, dict):
        return False
    return found.get("tool") == TOOL or {"command", "scenario_sha256"} <= found.keys()


def check_output_directory(target: str | Path, *, overwrite: bool = False) -> None:
    """Refuse an output directory whose replacement would lose what this tool did not write.

    Allowed: a directory that does not exist yet, an empty one, and — with
    ``overwrite`` — an earlier result of this tool. Refused, with the reason:
    the working directory or one of its parents, a file, a place this user
    cannot write, a directory holding anything else, and an earlier result
    without ``overwrite``.

    Raises
    ------
    OutputDirectoryError
        Naming the directory and the rule.
    """
    path = Path(target)
    resolved = path.resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise OutputDirectoryError(
            f"{path}: is the working directory or one of its parents; "
            "results go into a directory of their own"
        )
    if resolved.exists() and not resolved.is_dir():
        raise OutputDirectoryError(f"{path}: is a file, not a directory")
    _check_writable(path)
    if not resolved.is_dir() or not any(resolved.iterdir()):
        return
    if not is_result_directory(resolved):
        raise OutputDirectoryError(
            f"{path}: holds files that are not a result of {TOOL} (no manifest.json of ours); "
            "choose a new or empty directory"
        )
    if not overwrite:
        raise OutputDirectoryError(
            f"{path}: holds an earlier result; pass --overwrite to replace it"
        )


def _check_writable(out: Path) -> None:
    """Refuse an ``--out`` whose parent this user cannot write, before any work starts.

    The result is staged beside ``out`` and renamed into place, so what must be
    writable is the nearest existing directory on the way to it; a probe
    directory is made there and removed (permission bits alone do not tell:
    a read-only file system refuses even root).
    """
    parent = out.resolve().parent
    while not parent.exists():
        parent = parent.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".cosim-probe-", dir=parent))
    except OSError as err:
        raise OutputDirectoryError(f"{out}: cannot be written ({err.strerror}: {parent})") from None


def manifest(
    loaded: LoadedScenario | LoadedWholesale | LoadedOneMarket,
    command: str,
    extra: dict | None = None,
) -> dict:
    """What identifies a result: scenario, its hash, seed, versions, commit, time.

    Works for every scenario format (each has a name, a seed and a file hash).
    """
    scenario = loaded.scenario
    return {
        "tool": TOOL,
        "command": command,
        "scenario_name": scenario.scenario.name,
        "scenario_file": None if loaded.path is None else str(loaded.path),
        "scenario_sha256": loaded.sha256,
        "seed": scenario.seed,
        "scenario": json.loads(scenario.model_dump_json()),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "created_utc": created_utc(),
        **(extra or {}),
    }


def _directory_mode() -> int:
    """The mode a new directory gets from the user's umask (``0o777 & ~umask``)."""
    return 0o777 & ~_umask()


def file_mode() -> int:
    """The mode a new file gets from the user's umask (``0o666 & ~umask``); ``mkstemp``
    makes its files private (0600), and a file renamed into place keeps that."""
    return 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds.

    On an exception the temporary directory is removed and ``target`` is left
    exactly as it was. Whether ``target`` may be replaced is the caller's
    decision (:func:`check_output_directory`); this never replaces the working
    directory, one of its parents or a file.
    """
    target = Path(target).resolve()
    here = Path.cwd().resolve()
    if target == here or target in here.parents or (target.exists() and not target.is_dir()):
        raise OutputDirectoryError(f"{target}: not a directory this tool may replace")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    staging.chmod(_directory_mode())  # mkdtemp makes it private (0700); a result is not
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
