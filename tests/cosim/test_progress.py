"""Progress on stderr when it is not a terminal: whole lines, a heartbeat, and ``--quiet``."""

from __future__ import annotations

import time

import pytest

from cosim import progress


@pytest.fixture(autouse=True)
def _loud():
    progress.configure(quiet=False)
    yield
    progress.configure(quiet=False)


def test_a_bar_off_a_terminal_writes_whole_lines(capsys):
    with progress.bar(3, "replications") as shown:
        for _ in range(3):
            shown.update(1)
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert lines[0].startswith("replications:   0%") and lines[-1].startswith("replications: 100%")
    assert "3/3" in lines[-1]


def test_an_activity_is_announced_and_repeated_after_silence(capsys, monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT_S", 0.5)
    with progress.activity("compiling"):
        time.sleep(2.5)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "compiling …"
    assert any(line.startswith("compiling … still running (") for line in err[1:]), err


def test_quiet_prints_nothing(capsys):
    progress.configure(quiet=True)
    with progress.activity("solving"), progress.bar(2, "steps") as shown:
        shown.update(2)
    assert capsys.readouterr().err == ""
