"""The runner interface and the runners on this machine: in this process, or a process pool.

Every runner hands out ``concurrent.futures.Future`` objects, so one dispatcher
(:func:`~evoaug.offline._dispatch.run_tasks`) drives them all; the cluster runners are in
:mod:`evoaug.offline._cluster`.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from evoaug._checks import check_int

__all__ = ["ProcessRunner", "Runner", "SerialRunner"]

_log = logging.getLogger(__name__)


class Runner(ABC):
    """Runs tasks somewhere and returns futures; a context manager that releases its workers."""

    name = "runner"

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many tasks may be in flight at once."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Start ``fn(*args)``; the future raises if the worker was lost."""

    def recover(self) -> None:  # noqa: B027 - most runners need nothing
        """Make the runner usable again after a lost worker (e.g. rebuild a broken pool)."""

    def close(self) -> None:  # noqa: B027
        """Release the workers (idempotent)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialRunner(Runner):
    """Evaluate in this process, one task at a time (debugging, synthetic problems, tests).

    Example:
        >>> with SerialRunner() as runner:
        ...     runner.submit(pow, 2, 10).result()
        1024

    """

    name = "serial"

    @property
    def slots(self) -> int:
        """One task at a time."""
        return 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Run ``fn(*args)`` now; an exception it raises is set on the future."""
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args))
        except Exception as err:
            future.set_exception(err)
        return future


def _init_worker(threads: int) -> None:
    import torch

    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    torch.set_num_threads(threads)


class ProcessRunner(Runner):
    """A local pool of ``workers`` processes (``spawn`` start method, safe with CUDA and threads).

    Each worker limits torch to ``cpu_count // workers`` threads (at least one), so the pool does
    not oversubscribe the cores. A worker that dies (killed, out of memory, ``os._exit``) breaks
    the pool: every task then in flight fails with ``BrokenProcessPool`` and :meth:`recover`
    starts a fresh pool.

    Args:
        workers: Processes in the pool.
        threads_per_worker: torch threads per worker; default as above.

    Raises:
        ConfigError: ``workers`` below 1 or ``threads_per_worker`` below 1.

    Example:
        >>> runner = ProcessRunner(workers=4, threads_per_worker=1)  # processes start on submit
        >>> runner.slots, runner.threads_per_worker
        (4, 1)
        >>> runner.close()

    """

    name = "process"

    def __init__(self, workers: int = 2, *, threads_per_worker: int | None = None) -> None:
        self.workers = check_int("workers", workers, low=1)
        if threads_per_worker is None:
            threads_per_worker = max(1, (os.cpu_count() or 1) // self.workers)
        self.threads_per_worker = check_int("threads_per_worker", threads_per_worker, low=1)
        self._pool: cf.ProcessPoolExecutor | None = None

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.threads_per_worker,),
            )
        return self._pool

    @property
    def slots(self) -> int:
        """The number of worker processes."""
        return self.workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Queue ``fn(*args)`` on the pool."""
        return self._executor().submit(fn, *args)

    def recover(self) -> None:
        """Replace the pool when a dead worker broke it."""
        pool = self._pool
        if pool is not None and getattr(pool, "_broken", False):
            _log.warning("a worker process died; starting a fresh pool of %d", self.workers)
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Shut the pool down, cancelling queued tasks."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
