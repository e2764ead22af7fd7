"""Progress on standard error: a live bar on a terminal, whole lines anywhere else.

On a terminal a :func:`bar` redraws itself in place. When standard error is a
file or a pipe (a batch job's log, CI) redraws would pile up as one endless
line, so the bar writes a whole line at most every :data:`LINE_INTERVAL_S`
seconds instead. Long work without a bar — compiling the kernels on a first
run, one long solve iteration — is announced by :func:`activity`, which also
repeats a line after every :data:`HEARTBEAT_S` seconds of silence when
standard error is not a terminal. :func:`configure` silences all of it
(``--quiet``); standard output is never touched.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

__all__ = ["HEARTBEAT_S", "LINE_INTERVAL_S", "activity", "bar", "configure"]

#: Seconds between a bar's lines when standard error is not a terminal.
LINE_INTERVAL_S = 5.0
#: Seconds of silence after which :func:`activity` says again what is running.
HEARTBEAT_S = 10.0
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _State:
    """What is running and when a line was last written (shared with the heartbeat thread)."""

    def __init__(self) -> None:
        self.quiet = False
        self.lock = threading.Lock()
        self.labels: list[tuple[str, float]] = []
        self.last_line = time.monotonic()
        self.heartbeat: threading.Thread | None = None

    def say(self, text: str) -> None:
        with self.lock:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            self.last_line = time.monotonic()


_state = _State()


def configure(quiet: bool = False) -> None:
    """``quiet``: no bars and no activity lines (``--quiet``); errors still reach stderr."""
    _state.quiet = quiet


def _terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class _Lines:
    """A file for tqdm that turns its in-place redraws into whole lines."""

    def write(self, text: str) -> None:
        for line in _ANSI.sub("", text).replace("\r", "\n").split("\n"):
            if line.strip():
                _state.say(line.rstrip())

    def flush(self) -> None:
        sys.stderr.flush()


def bar(
    total: int, desc: str, unit: str = "it", leave: bool = True, show: bool = True, initial: int = 0
) -> tqdm:
    """A progress bar on standard error (see the module's docstring).

    ``show=False`` (or :func:`configure` ``quiet``) gives a bar that prints
    nothing; ``initial``: units already done (e.g. replications resumed).
    """
    common = {"total": total, "desc": desc, "unit": unit, "initial": initial}
    disable = _state.quiet or not show
    if _terminal():
        return tqdm(**common, file=sys.stderr, leave=leave, disable=disable, dynamic_ncols=True)
    return tqdm(
        **common, file=_Lines(), leave=True, disable=disable,
        mininterval=LINE_INTERVAL_S, ncols=120, ascii=True,
    )  # fmt: skip


@contextmanager
def activity(label: str) -> Iterator[None]:
    """Announce ``label`` (one line), and off a terminal repeat it, with the seconds spent,
    after every :data:`HEARTBEAT_S` seconds in which nothing else was written."""
    if _state.quiet:
        yield
        return
    _state.say(f"{label} …")
    entry = (label, time.monotonic())
    with _state.lock:
        _state.labels.append(entry)
        if not _terminal() and _state.heartbeat is None:
            _state.heartbeat = threading.Thread(target=_beat, name="cosim-heartbeat", daemon=True)
            _state.heartbeat.start()
    try:
        yield
    finally:
        with _state.lock:
            _state.labels.remove(entry)


def _beat() -> None:
    """The heartbeat thread: the innermost running activity, after each silence."""
    while True:
        time.sleep(1.0)
        with _state.lock:
            if not _state.labels or time.monotonic() - _state.last_line < HEARTBEAT_S:
                continue
            label, since = _state.labels[-1]
        _state.say(f"{label} … still running ({time.monotonic() - since:.0f} s)")
