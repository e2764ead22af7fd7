"""The Dask ``tcp://`` backend against a real scheduler and workers (separate processes)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cosim.studies.epsilon import LawUnderTest, SampleOthers
from cosim.studies.montecarlo import run_replications
from models.config import GameConfig
from models.game import build_game

pytest.importorskip("distributed", reason="dask[distributed] is not installed")

ROOT = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")
#: Safety nets should the test process die without cleaning up: the scheduler stops after
#: this long idle, a worker this long after losing its scheduler [s].
ORPHAN_TIMEOUT_S = 120


@dataclass(frozen=True)
class HeavyDraw:
    """A replication carrying a large payload, like a law with its game (imported by workers)."""

    payload: np.ndarray

    def __call__(self, replication: int, seq: np.random.SeedSequence) -> pd.DataFrame:
        rng = np.random.default_rng(seq)
        return pd.DataFrame({"x": rng.normal(size=3) + self.payload[replication]})


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def dask_cluster(directory: Path, workers: int = 2) -> Iterator[str]:
    """A ``dask scheduler`` and ``workers`` single-threaded ``dask worker`` processes.

    Yields the scheduler's ``tcp://127.0.0.1:PORT`` once every worker has
    joined; the processes are stopped on exit, also when the body fails.
    """
    if not DASK.exists():
        pytest.skip(f"no dask command next to {sys.executable}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    file = directory / "scheduler.json"
    procs: list[subprocess.Popen] = []

    def spawn(name: str, *args: str) -> None:
        with open(directory / f"{name}.log", "wb") as log:  # the child keeps its own handle
            procs.append(
                subprocess.Popen([str(DASK), *args], env=env, stdout=log, stderr=log, cwd=directory)
            )

    try:
        spawn(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(file),
            "--idle-timeout",
            f"{ORPHAN_TIMEOUT_S}s",
        )
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            assert procs[0].poll() is None, (directory / "scheduler.log").read_text()
            time.sleep(0.1)
        address = json.loads(file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for w in range(workers):
            spawn(
                f"worker{w}",
                "worker",
                address,
                "--no-nanny",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                f"w{w}",
                "--local-directory",
                str(directory / f"w{w}"),
                "--death-timeout",
                f"{ORPHAN_TIMEOUT_S}s",
            )
        from dask.distributed import Client

        with Client(address) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory) -> Iterator[str]:
    with dask_cluster(tmp_path_factory.mktemp("dask")) as address:
        yield address


@pytest.fixture(scope="module")
def replication() -> SampleOthers:
    """A real co-simulation replication: one day of 2 × 3 households under a cheap law."""
    config = GameConfig.model_validate(
        {
            "seed": 3,
            "time": {"dt_h": 1.0},
            "clusters": {"count": 2, "households": 10, "distances": {"kind": "line"}},
            "solver": {"soe_points": 21},
        }
    )
    law = LawUnderTest.flat_price_response(build_game(config), "coc")
    return SampleOthers(law, np.array([3, 3]))


def test_tcp_scheduler_gives_the_process_pool_table(scheduler, replication, tmp_path):
    pool = run_replications(replication, 5, 17, tmp_path / "pool", workers=2, progress=False)
    tcp = run_replications(
        replication, 5, 17, tmp_path / "tcp", scheduler=scheduler, progress=False
    )
    assert tcp.computed == list(range(5)) and tcp.reused == []
    pd.testing.assert_frame_equal(pool.table, tcp.table, check_exact=True)
    assert list(tcp.table["replication"].unique()) == list(range(5))
    assert tcp.table["own_kwh"].std() > 0.0  # the replications really differ
    # the files arrive through the driver, one per replication (with its checksum), and a
    # rerun reuses them all
    assert sorted(p.name for p in (tmp_path / "tcp").iterdir()) == [
        f"rep-{r:06d}.parquet{suffix}" for r in range(5) for suffix in ("", ".sha256")
    ]
    again = run_replications(
        replication, 6, 17, tmp_path / "tcp", scheduler=scheduler, progress=False
    )
    assert again.reused == list(range(5)) and again.computed == [5]
    one = run_replications(replication, 6, 17, tmp_path / "one", workers=1, progress=False)
    pd.testing.assert_frame_equal(one.table, again.table, check_exact=True)


def test_a_large_replication_function_is_shipped_once(scheduler, tmp_path):
    """16 MiB per task would make Dask warn (an error here) about a large graph, and be slow."""
    fn = HeavyDraw(np.arange(2_000_000, dtype=float))
    tcp = run_replications(fn, 4, 5, tmp_path / "tcp", scheduler=scheduler, progress=False)
    local = run_replications(fn, 4, 5, tmp_path / "local", progress=False)
    pd.testing.assert_frame_equal(local.table, tcp.table, check_exact=True)
