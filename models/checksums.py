"""Checksums of the files this tool writes and reads back, so that damage is named, not tracebacked.

A directory written as a whole — a saved result, a cached equilibrium — lists
the SHA-256 of the files it is read back from in ``checksums.sha256``; a file
written on its own — a Monte Carlo replication — has its checksum beside it,
in ``NAME.sha256``. Both use the format of ``sha256sum`` (``HEX  NAME`` per
line), so ``sha256sum -c checksums.sha256`` checks them from a shell too.

A file that is missing, unreadable or differs from its checksum raises
:class:`DamagedFileError`, which names it. What is done then is the caller's
decision: derived data (a cached equilibrium, a replication) is computed
again, a finished result is reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "CHECKSUMS",
    "DamagedFileError",
    "file_sha256",
    "read_checked",
    "read_json",
    "read_npz",
    "verify_checksums",
    "verify_sidecar",
    "write_checksums",
    "write_sidecar",
    "write_text_checked",
]

#: The checksum list of a directory written as a whole.
CHECKSUMS = "checksums.sha256"

#: What reading a damaged file raises: truncated JSON, Parquet or NPZ files, bad
#: compressed streams (pyarrow's errors derive from these built-in ones).
_READ_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    EOFError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)

_T = TypeVar("_T")


class DamagedFileError(ValueError):
    """A file this tool wrote does not read back as written: missing, unreadable, or altered.

    ``str(error)`` is one line, ``PATH: what is wrong``.
    """

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path)
        """The file."""
        self.what = what
        """What is wrong with it, e.g. ``damaged (checksum mismatch)``."""
        super().__init__(f"{path}: {what}")


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, as 64 hexadecimal digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _parse(listing: Path) -> dict[str, str]:
    """The ``name → SHA-256`` of a checksum file; :class:`DamagedFileError` if it is malformed."""
    try:
        text = listing.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DamagedFileError(listing, f"damaged (unreadable: {_first_line(err)})") from err
    found = {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or set(digest) - set("0123456789abcdef"):
            raise DamagedFileError(listing, "damaged (not a checksum list)")
        found[name] = digest
    if not text.endswith("\n"):  # cut short after the last whole line
        raise DamagedFileError(listing, "damaged (truncated)")
    return found


def write_checksums(directory: str | Path, names: Iterable[str]) -> None:
    """List the SHA-256 of the files ``names`` of ``directory`` in its ``checksums.sha256``."""
    directory = Path(directory)
    lines = [f"{file_sha256(directory / name)}  {name}\n" for name in names]
    _replace_text(directory / CHECKSUMS, "".join(lines))


def verify_checksums(directory: str | Path, required: Iterable[str] = ()) -> bool:
    """Check every file listed in ``directory``'s ``checksums.sha256`` against its checksum.

    Parameters
    ----------
    directory
        A directory written as a whole, with its checksum list.
    required
        Files that must be listed (those the caller is about to read).

    Returns
    -------
    bool
        True when every listed file is intact; False when the directory has no
        checksum list (written before there was one: nothing was checked).

    Raises
    ------
    DamagedFileError
        Naming the first file missing, altered, or required but not listed.
    """
    directory = Path(directory)
    listing = directory / CHECKSUMS
    if not listing.exists():
        return False
    found = _parse(listing)
    for name in required:
        if name not in found and (directory / name).exists():
            raise DamagedFileError(directory / name, f"damaged (no checksum in {CHECKSUMS})")
    for name, digest in found.items():
        _check(directory / name, digest)
    return True


def _check(path: Path, digest: str) -> None:
    """Raise :class:`DamagedFileError` unless ``path`` exists with SHA-256 ``digest``."""
    if not path.is_file():
        raise DamagedFileError(path, "missing")
    if file_sha256(path) != digest:
        raise DamagedFileError(path, "damaged (checksum mismatch)")


def _sidecar(path: Path) -> Path:
    return path.with_name(f"{path.name}.sha256")


def write_sidecar(path: str | Path, digest: str | None = None) -> None:
    """Write ``NAME.sha256`` beside ``path``: ``digest``, or the file's SHA-256 as it is now."""
    path = Path(path)
    digest = file_sha256(path) if digest is None else digest
    _replace_text(_sidecar(path), f"{digest}  {path.name}\n")


def write_text_checked(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, with its checksum beside it (``NAME.sha256``)."""
    path = Path(path)
    write_sidecar(path, hashlib.sha256(text.encode("utf-8")).hexdigest())
    _replace_text(path, text)


def verify_sidecar(path: str | Path) -> bool:
    """Check ``path`` against the checksum beside it.

    Returns
    -------
    bool
        True when it matches; False when there is no ``NAME.sha256`` (a file
        written before there was one: nothing was checked).

    Raises
    ------
    DamagedFileError
        When ``path`` is missing or differs from its checksum, or the checksum
        file is malformed.
    """
    path = Path(path)
    sidecar = _sidecar(path)
    if not sidecar.exists():
        return False
    found = _parse(sidecar)
    if list(found) != [path.name]:
        raise DamagedFileError(sidecar, f"damaged (not the checksum of {path.name})")
    _check(path, found[path.name])
    return True


def read_checked(path: str | Path, read: Callable[[Path], _T]) -> _T:
    """``read(path)``, with a missing or unreadable file reported as :class:`DamagedFileError`."""
    path = Path(path)
    if not path.exists():
        raise DamagedFileError(path, "missing")
    try:
        return read(path)
    except _READ_ERRORS as err:
        raise DamagedFileError(path, f"damaged (unreadable: {_first_line(err)})") from err


def read_json(path: Path) -> Any:
    """The JSON document in ``path`` (a reader for :func:`read_checked`)."""
    return json.loads(path.read_text(encoding="utf-8"))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an NPZ file, read now, so a damaged member fails here, not later."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _first_line(err: BaseException) -> str:
    """An error's message on one line (its type's name when it has none)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
