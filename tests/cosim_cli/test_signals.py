"""Ctrl-C, SIGTERM and SIGKILL of ``cosim epsilon --workers 2`` in the middle of its replications.

The command runs in a child process, as a user starts it. SIGINT and SIGTERM
end it with one line on stderr and no traceback; nothing half-written is left
beside ``--out``; finished replication files stay for a resume. After any of
the three, no pool worker outlives the driver by more than 10 s (a killed
driver cannot stop its workers: they ask the kernel to end them with it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads processes from /proc"
)

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)],
)
def test_a_signal_ends_the_study_and_its_workers(scenario, epsilon_args, tmp_path, sig, status):
    args = epsilon_args(scenario, "--sizes", "20", "--reps", "2000", "--workers", "2")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen(
        [sys.executable, "-m", "cosim_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        work = tmp_path / "work"
        started = _wait_for(lambda: any(work.rglob("rep-*.parquet")), 120)
        workers = _children(driver.pid)
        assert started and len(workers) >= 2, (workers, driver.poll())
        driver.send_signal(sig)
        _, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == status, err
    assert _wait_for(lambda: not any(_alive(w) for w in workers), 10), "a worker outlived it"
    assert any(work.rglob("rep-*.parquet")), "finished replications are kept"
    if sig == signal.SIGKILL:
        return
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("cosim epsilon: interrupted ("), err
    assert not list(tmp_path.glob(".out.partial-*")) and not (tmp_path / "out").exists()


def test_a_worker_killed_by_the_system_ends_the_study_in_one_line(scenario, epsilon_args, tmp_path):
    """As the kernel's out-of-memory killer would: one worker SIGKILLed, the driver says so in
    one line (status 3), stops the other worker, and keeps the finished replications."""
    args = epsilon_args(scenario, "--sizes", "20", "--reps", "2000", "--workers", "2")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen(
        [sys.executable, "-m", "cosim_cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        work = tmp_path / "work"
        started = _wait_for(lambda: any(work.rglob("rep-*.parquet")), 120)
        workers = _children(driver.pid)
        assert started and len(workers) >= 2, (workers, driver.poll())
        pool = [w for w in workers if b"resource_tracker" not in _cmdline(w)]
        os.kill(pool[0], signal.SIGKILL)
        _, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 3, err
    assert "Traceback" not in err, err
    assert "a worker process died abruptly" in err.strip().splitlines()[-1]
    assert _wait_for(lambda: not any(_alive(w) for w in workers), 10), "a worker outlived it"
    assert any(work.rglob("rep-*.parquet"))
