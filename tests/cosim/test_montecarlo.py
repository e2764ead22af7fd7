"""Monte Carlo runner: seeds independent of the backend, atomic per-replication files, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.studies.montecarlo import replication_path, run_replications, write_atomically


def draw(replication: int, seq: np.random.SeedSequence) -> pd.DataFrame:
    """A cheap replication: a few numbers from its own stream."""
    rng = np.random.default_rng(seq)
    return pd.DataFrame({"x": rng.normal(size=3), "k": np.arange(3)})


def test_same_table_with_one_worker_two_workers_and_dask(tmp_path):
    one = run_replications(draw, 6, 42, tmp_path / "one", workers=1, progress=False).table
    two = run_replications(draw, 6, 42, tmp_path / "two", workers=2, progress=False).table
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert list(one["replication"].unique()) == list(range(6))
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    dask = run_replications(
        draw,
        6,
        42,
        tmp_path / "dask",
        workers=2,
        scheduler="local",
        dask_processes=False,
        progress=False,
    ).table
    pd.testing.assert_frame_equal(one, dask, check_exact=True)


def test_resume_reuses_finished_replications(tmp_path):
    first = run_replications(draw, [0, 2], 3, tmp_path, progress=False)
    assert first.computed == [0, 2]
    again = run_replications(draw, 4, 3, tmp_path, progress=False)
    assert again.reused == [0, 2] and again.computed == [1, 3]
    fresh = run_replications(draw, 4, 3, tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(again.table, fresh.table, check_exact=True)


SLOW_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np, pandas as pd
    from cosim.studies.montecarlo import run_replications

    def slow(replication, seq):
        time.sleep(0.4)
        rng = np.random.default_rng(seq)
        return pd.DataFrame({"x": rng.normal(size=2)})

    if __name__ == "__main__":
        run_replications(slow, 12, 9, sys.argv[1], workers=1, progress=False)
    """
)


def test_sigkill_part_way_then_resume_equals_uninterrupted(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if out.exists() and len(list(out.glob("rep-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in out.glob("rep-*.parquet"))
    assert 3 <= len(done) < 12
    mtimes = {name: (out / name).stat().st_mtime_ns for name in done}

    sys.path.insert(0, str(tmp_path))
    try:
        import slow  # the same function, importable so results are comparable

        resumed = run_replications(slow.slow, 12, 9, out, progress=False)
        fresh = run_replications(slow.slow, 12, 9, tmp_path / "fresh", progress=False)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("slow", None)
    assert sorted(resumed.reused) == [int(n[4:10]) for n in done]
    assert not set(resumed.computed) & set(resumed.reused)
    assert sorted(resumed.computed + resumed.reused) == list(range(12))
    for name, mtime in mtimes.items():  # finished files were not rewritten
        assert (out / name).stat().st_mtime_ns == mtime
    assert not list(out.glob(".*.tmp"))
    assert len(resumed.table) == 24
    pd.testing.assert_frame_equal(resumed.table, fresh.table, check_exact=True)
    assert replication_path(out, 11).exists()


def test_replication_files_get_the_users_normal_permissions(tmp_path):
    """Written through a private temporary file, a replication still gets ``0o666 & ~umask``."""
    import stat

    write_atomically(pd.DataFrame({"x": [1.0]}), tmp_path / "rep-000000.parquet")
    mask = os.umask(0o022)
    os.umask(mask)
    mode = stat.S_IMODE((tmp_path / "rep-000000.parquet").stat().st_mode)
    assert mode == 0o666 & ~mask
