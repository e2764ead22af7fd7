"""Monte Carlo replications: seeded, parallel, checkpointed per replication, resumable.

One loop (:func:`run_replications`) runs any picklable replication function
``fn(replication, seed_sequence) -> pandas.DataFrame`` over replications
``0..R-1``. Replication ``r`` always receives child ``r`` of
``numpy.random.SeedSequence(seed)``, so its numbers depend on ``(seed, r)``
only — never on the backend or the number of workers.

Backends: a local process pool (default; ``concurrent.futures``) or a Dask
distributed cluster (``scheduler="local"`` starts a ``LocalCluster``, any other
value is a scheduler address such as ``tcp://HOST:PORT``). The driver writes
each replication's table as soon as it arrives, atomically (temporary file,
then ``os.replace``), as ``rep-000042.parquet`` with its SHA-256 beside it in
``rep-000042.parquet.sha256``; a run started again on the same directory reuses
the finished files and computes only the missing ones. A file that is
unreadable or differs from its checksum is named on standard error and its
replication run again from its seed; a file of an earlier version, with no
checksum beside it, is used unchecked and its checksum recorded from then on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cosim.io.results import file_mode
from cosim.progress import bar
from models.checksums import (
    DamagedFileError,
    file_sha256,
    read_checked,
    verify_sidecar,
    write_sidecar,
)

ReplicationFunction = Callable[[int, np.random.SeedSequence], pd.DataFrame]


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    """Children ``0..R-1`` of ``SeedSequence(seed)``: one independent stream per replication."""
    return np.random.SeedSequence(seed).spawn(replications)


def engine_seed(seq: np.random.SeedSequence) -> int:
    """An integer seed for the co-simulation engine drawn from a replication's sequence."""
    return int(seq.generate_state(1, np.uint32)[0])


def replication_path(directory: Path, replication: int) -> Path:
    """File of replication ``replication`` in ``directory``."""
    return directory / f"rep-{replication:06d}.parquet"


def write_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` as Parquet to ``path`` via a temporary file and ``os.replace``.

    The file's SHA-256 goes into ``NAME.sha256`` before the file takes its
    name, so a replication file without one was written by an earlier version.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        table.to_parquet(tmp, index=False)
        os.chmod(tmp, file_mode())
        write_sidecar(path, file_sha256(Path(tmp)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class RunSummary:
    """What a call of :func:`run_replications` did."""

    table: pd.DataFrame
    """All replications' rows, in replication order, with a ``replication`` column."""
    computed: list[int]
    """Replications computed by this call."""
    reused: list[int]
    """Replications read back from earlier (possibly interrupted) runs."""


def _call(fn: ReplicationFunction, replication: int, seq: np.random.SeedSequence) -> pd.DataFrame:
    table = fn(replication, seq)
    table = table.copy()
    table.insert(0, "replication", replication)
    return table


@contextmanager
def _dask_client(scheduler: str, workers: int, processes: bool) -> Iterator:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the Dask backend needs dask[distributed]: pip install 'dask[distributed]'"
        ) from err
    if scheduler == "local":
        with (
            LocalCluster(
                n_workers=max(workers, 1),
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        with _connect(Client, scheduler) as client:
            yield client


class SchedulerUnreachableError(ConnectionError):
    """No Dask scheduler answered at the address given."""


#: Seconds to wait for a Dask scheduler to answer before giving up.
CONNECT_TIMEOUT_S = 10


def _connect(client_type, scheduler: str):
    """``Client(scheduler)``, or :class:`SchedulerUnreachableError` naming the address."""
    try:
        return client_type(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as err:
        raise SchedulerUnreachableError(
            f"{scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s ({err})"
        ) from err


def check_scheduler(scheduler: str | None) -> None:
    """Connect to ``scheduler`` once and leave, before any work starts.

    ``None`` (local process pool) and ``"local"`` (a ``LocalCluster`` started
    here) need no check. Raises :class:`SchedulerUnreachableError`.
    """
    if scheduler is None or scheduler == "local":
        return
    from dask.distributed import Client

    with _connect(Client, scheduler):
        pass


def _submit_all(
    fn: ReplicationFunction,
    todo: list[int],
    seeds: list[np.random.SeedSequence],
    workers: int,
    scheduler: str | None,
    dask_processes: bool = True,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(replication, table)`` as replications finish, on the chosen backend."""
    if not todo:
        return
    if scheduler is not None:
        from dask.distributed import as_completed

        with _dask_client(scheduler, workers, dask_processes) as client:
            # ship ``fn`` (a law and its game: megabytes) to the cluster once, not once per task
            shared = client.scatter(fn, broadcast=True, hash=False)
            futures = {client.submit(_call, shared, r, seeds[r], pure=False): r for r in todo}
            for future in as_completed(futures):
                yield futures[future], future.result()
        return
    if workers <= 1:
        for r in todo:
            yield r, _call(fn, r, seeds[r])
        return
    with worker_pool(workers) as pool:
        pending: dict[Future, int] = {pool.submit(_call, fn, r, seeds[r]): r for r in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: pending[f]):
                yield pending.pop(future), future.result()


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes that ignore Ctrl-C and die with this one.

    On any error, Ctrl-C or SIGTERM inside the block the workers' running
    tasks are lost: the pool is stopped at once and its workers killed.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers, initializer=_worker_start, initargs=(os.getpid(),)
    )
    try:
        yield pool
    except BaseException:
        _kill_workers(pool)
        raise
    pool.shutdown()


def _worker_start(driver: int) -> None:
    """A pool worker's first act: leave interrupts to the driver, and never outlive it.

    Ctrl-C reaches every process of the terminal's group; the driver alone
    handles it (and stops the workers). A driver killed outright (SIGKILL)
    cannot stop them, so each worker asks the kernel to kill it when its
    parent dies (Linux ``PR_SET_PDEATHSIG``), or elsewhere watches its parent.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    else:  # pragma: no cover - exercised on Linux only
        threading.Thread(target=_watch_parent, args=(driver,), daemon=True).start()
    if os.getppid() != driver:  # the driver died before the request took effect
        os._exit(1)


def _watch_parent(driver: int) -> None:  # pragma: no cover - not Linux
    while os.getppid() == driver:
        time.sleep(1.0)
    os._exit(1)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop ``pool`` now: pending tasks cancelled, running ones killed with their workers."""
    processes = list(getattr(pool, "_processes", None) or {})  # pid → process (Python ≤ 3.13)
    queue = getattr(pool, "_call_queue", None)
    if queue is not None:  # its feeder may be blocked writing a task to a worker about to die:
        queue.cancel_join_thread()  # then neither the pool's clean-up nor the exit waits for it
    pool.shutdown(wait=False, cancel_futures=True)
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_replications(
    fn: ReplicationFunction,
    replications: int | Iterable[int],
    seed: int,
    directory: Path | str,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    description: str = "replications",
    dask_processes: bool = True,
) -> RunSummary:
    """Run (or resume) replications of ``fn`` and return their concatenated table.

    Parameters
    ----------
    fn
        Picklable ``fn(replication, seed_sequence) -> DataFrame`` (module-level
        function or an instance of a module-level class).
    replications
        Their number ``R`` (replications ``0..R-1``) or an explicit list of indices.
    seed
        Root of the ``SeedSequence`` whose child ``r`` seeds replication ``r``.
    directory
        Where ``rep-NNNNNN.parquet`` files are written and found on resume.
    workers
        Processes of the local pool; ``1`` runs in this process.
    scheduler
        ``None`` for the local pool, ``"local"`` for a Dask ``LocalCluster``,
        or a Dask scheduler address (``tcp://HOST:PORT``).
    dask_processes
        Whether a Dask ``LocalCluster`` runs its ``workers`` as processes
        (threads otherwise, cheaper for small jobs).
    progress
        Show a progress bar with ETA on stderr (:func:`cosim.progress.bar`).
    """
    indices = (
        list(range(replications)) if isinstance(replications, int) else sorted(set(replications))
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    seeds = replication_seeds(seed, max(indices, default=-1) + 1)
    found = _finished(directory, indices)
    reused = sorted(found)
    todo = [r for r in indices if r not in found]
    computed: list[int] = []
    with bar(len(indices), description, initial=len(reused), show=progress) as shown:
        for r, table in _submit_all(fn, todo, seeds, workers, scheduler, dask_processes):
            write_atomically(table, replication_path(directory, r))
            computed.append(r)
            shown.update(1)
    tables = [
        found[r] if r in found else pd.read_parquet(replication_path(directory, r)) for r in indices
    ]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return RunSummary(table=table, computed=sorted(computed), reused=reused)


def _finished(directory: Path, indices: list[int]) -> dict[int, pd.DataFrame]:
    """The tables of the replications already in ``directory`` that read back intact.

    A damaged file is named on standard error, one line each, and left to be
    run again (and replaced). Files without a checksum (an earlier version's)
    are used if they read, and their checksums recorded: one line says how many.
    """
    found: dict[int, pd.DataFrame] = {}
    unchecked = 0
    for r in indices:
        path = replication_path(directory, r)
        if not path.exists():
            continue
        try:
            checked = verify_sidecar(path)
            found[r] = read_checked(path, pd.read_parquet)
        except DamagedFileError as err:
            print(f"{err}; running replication {r} again from its seed", file=sys.stderr)
            continue
        if not checked:
            write_sidecar(path)
            unchecked += 1
    if unchecked:
        print(
            f"{directory}: {unchecked} replication file(s) without a checksum (written by an "
            "earlier version) used unchecked; their checksums are recorded now",
            file=sys.stderr,
        )
    return found
