"""Executors for the per-file work of preparation and feature extraction.

``make_executor("local", nj)`` gives a process pool on this machine (``None`` for
``nj <= 1``: the stage then runs in its own process); ``make_executor("dask", nj,
scheduler)`` gives the ``concurrent.futures`` view of a ``dask.distributed`` client,
so the same stage code runs on a cluster (SLURM through dask-jobqueue, see
docs/scaling.md). The scheduler address comes from the argument, else from
``DASK_SCHEDULER_ADDRESS``; with neither, a local dask cluster of ``nj`` worker
processes is started for the stage. Workers must import ``speecheq``, see the
corpus and output folders under the same paths (a shared file system) and run in
the recipe folder, since manifests hold paths relative to it (checked: a worker
elsewhere is one clear error).

Use :func:`executor_scope` in scripts: it closes the pool, the client and a
cluster it started, also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
from concurrent.futures import Executor
from typing import Iterator, Optional

from speecheq.errors import SpeechEQError

log = logging.getLogger("speecheq")

KINDS = ("local", "dask")
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up with one line


def make_executor(
    kind: str = "local", nj: int = 1, scheduler: Optional[str] = None, *, timeout: float = CONNECT_TIMEOUT
) -> Optional[Executor]:
    """A ``concurrent.futures.Executor``-compatible object, or ``None`` (run in this process).

    ``kind="local"``: a process pool of ``nj`` workers (spawned, so a parent that
    has torch's thread pool never forks it), ``None`` when ``nj <= 1``.
    ``kind="dask"``: ``distributed.Client(address).get_executor()``; ``nj`` only
    sizes the local cluster started when no address is given (and the number of
    feature chunks, which the caller passes separately).
    Close it with :func:`close_executor` (or use :func:`executor_scope`).
    """
    if kind not in KINDS:
        raise SpeechEQError(f"--executor must be one of {', '.join(KINDS)}, got {kind!r}")
    if nj < 1:
        raise SpeechEQError(f"--nj must be at least 1, got {nj}")
    if kind == "local":
        if nj <= 1:
            return None
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            nj, mp_context=multiprocessing.get_context("spawn"), initializer=exit_with_parent, initargs=(os.getpid(),)
        )

    try:
        from distributed import Client
    except ImportError:
        raise SpeechEQError(
            "--executor dask needs dask.distributed: pip install 'dask[distributed]' (or the speecheq[dask] extra)"
        ) from None
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    cluster = None
    if address is None:
        from distributed import LocalCluster

        log.info(
            "no dask scheduler given (--dask-scheduler or $%s): starting a local cluster of %d workers",
            SCHEDULER_ENV,
            nj,
        )
        cluster = LocalCluster(n_workers=nj, threads_per_worker=1, processes=True, dashboard_address=None)
        target = cluster  # its workers start in this folder
    else:
        target = address
    try:
        client = Client(target, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as e:  # unreachable, timed out, malformed address
        if cluster is not None:
            cluster.close()
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpeechEQError(f"cannot reach the dask scheduler at {address} ({reason})") from None
    elsewhere = sorted({d for d in client.run(os.getcwd).values() if d != os.getcwd()})
    if elsewhere:
        client.close()
        raise SpeechEQError(
            f"dask workers run in {elsewhere[0]}, this stage in {os.getcwd()}: the recipe's relative paths would not "
            f"resolve there; start the workers in {os.getcwd()} (docs/scaling.md)"
        )
    executor = client.get_executor(pure=False)
    _OWNED[id(executor)] = (client, cluster)
    log.info("dask: %s, %d workers", client.scheduler.address, len(client.scheduler_info().get("workers", {})))
    return executor


def exit_with_parent(parent_pid: int) -> None:
    """Pool initializer: die with the stage process. A worker of a stage killed with
    kill -9 would otherwise finish its task and write into a folder that the re-run
    is already cleaning (Linux; elsewhere a no-op)."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


# executor -> (client, cluster it started or None): what close_executor must close
_OWNED: dict = {}


def close_executor(executor: Optional[Executor]) -> None:
    """Shut the executor down and close what :func:`make_executor` opened for it."""
    if executor is None:
        return
    owned = _OWNED.pop(id(executor), None)
    if owned is None:
        executor.shutdown(wait=True, cancel_futures=True)
        return
    client, cluster = owned
    with contextlib.suppress(Exception):
        executor.shutdown(wait=False)
    client.close()
    if cluster is not None:
        cluster.close()


@contextlib.contextmanager
def executor_scope(
    kind: str = "local", nj: int = 1, scheduler: Optional[str] = None, **kwargs
) -> Iterator[Optional[Executor]]:
    """``with executor_scope("dask", 8, "tcp://host:8786") as ex: stage(..., executor=ex)``"""
    executor = make_executor(kind, nj, scheduler, **kwargs)
    try:
        yield executor
    finally:
        close_executor(executor)
