"""Where candidates train: in this process, a local process pool, or a Ray or Dask cluster.

Every runner hands out ``concurrent.futures.Future`` objects, so one dispatcher
(:func:`run_tasks`) drives them all. A future that *raises* means the evaluation did not happen
(the worker process died, a node left the cluster): the dispatcher re-queues the candidate, up
to ``max_attempts`` tries, and records it as failed after that. A candidate's own error never
raises here (see :func:`~evoaug.offline._task.evaluate_task`). Each candidate's result is handed
to ``on_result`` exactly once.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import logging
import math
import multiprocessing
import os
import socket
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any
from urllib.parse import urlsplit

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.offline._task import LowerLevel, evaluate_task, failure_result

__all__ = [
    "RUNNERS",
    "DaskRunner",
    "ProcessRunner",
    "RayRunner",
    "Runner",
    "SerialRunner",
    "check_address",
    "make_runner",
    "run_tasks",
]

RUNNERS = ("process", "ray", "dask", "serial")
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


def check_address(address: str, *, timeout: float, default_port: int, what: str) -> None:
    """Fail fast, with a clear message, when nothing answers at a cluster address.

    Accepts ``host:port`` and ``scheme://host:port`` (``ray://``, ``tcp://``, ...). A TCP
    connection is opened and closed; nothing is sent.

    Raises:
        ConfigError: The address cannot be parsed, or nothing accepted a connection within
            ``timeout`` seconds.

    Example:
        >>> check_address("127.0.0.1:1", timeout=1.0, default_port=6379, what="Ray")
        Traceback (most recent call last):
        ...
        evoaug.exceptions.ConfigError: `address` '127.0.0.1:1': no Ray cluster answered ...

    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or default_port
    except ValueError as err:
        raise ConfigError(f"`address` must look like host:port, got {address!r}") from err
    if not host:
        raise ConfigError(f"`address` must look like host:port, got {address!r}")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        raise ConfigError(
            f"`address` {address!r}: no {what} cluster answered at {host}:{port} within "
            f"{timeout:g} s ({err}). Start the cluster first (see docs/offline-search.md), "
            "check the host and port, or leave `--address` out for a local cluster"
        ) from err


def _missing_extra(extra: str, err: ImportError) -> ConfigError:
    return ConfigError(
        f"`--runner {extra}` needs the optional dependency {extra!r}: "
        f"pip install 'evoaug[{extra}]' ({err})"
    )


class RayRunner(Runner):
    """Ray tasks, on a local Ray instance or a running cluster (``pip install 'evoaug[ray]'``).

    Each task asks for ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs, so Ray places one
    candidate per device; Ray's own task retries are off (the dispatcher re-queues).

    Args:
        address: ``None``: start a local Ray instance with ``workers`` CPUs; ``"auto"``: the
            cluster this machine belongs to; ``host:port`` or ``ray://host:port``: that one
            (checked to answer within ``connect_timeout`` seconds first).
        workers: Tasks in flight at once.
        cpus_per_task: CPUs Ray reserves per candidate.
        gpus_per_task: GPUs Ray reserves per candidate.
        connect_timeout: Seconds to wait for the address to answer.

    Raises:
        ConfigError: Ray is not installed, or the address does not answer.

    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int = 2,
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.0,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            ray = importlib.import_module("ray")
        except ImportError as err:
            raise _missing_extra("ray", err) from err
        self.workers = check_int("workers", workers, low=1)
        if address is not None and address != "auto":
            check_address(address, timeout=connect_timeout, default_port=6379, what="Ray")
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            kwargs: dict[str, Any] = {"address": address, "log_to_driver": False}
            if address is None:
                kwargs.update(num_cpus=self.workers, include_dashboard=False)
            ray.init(**kwargs)
        self._refs: dict[cf.Future[Any], Any] = {}
        self._remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(
            _call
        )

    @property
    def slots(self) -> int:
        """Tasks in flight at once."""
        return self.workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Submit a Ray task; its ``ObjectRef.future()``."""
        ref = self._remote.remote(fn, *args)
        future: cf.Future[Any] = ref.future()
        self._refs[future] = ref  # the task lives as long as its ObjectRef
        future.add_done_callback(lambda f: self._refs.pop(f, None))
        return future

    def close(self) -> None:
        """Disconnect (and stop the local instance this runner started)."""
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


class DaskRunner(Runner):
    """Dask futures, on a local cluster or a running scheduler (``pip install 'evoaug[dask]'``).

    Args:
        address: ``None``: start a ``LocalCluster`` of ``workers`` single-threaded processes;
            ``tcp://host:8786`` (or ``host:port``): a running scheduler, checked to answer
            within ``connect_timeout`` seconds first.
        workers: Tasks in flight at once.
        connect_timeout: Seconds to wait for the scheduler.

    Raises:
        ConfigError: dask.distributed is not installed, or the scheduler does not answer.

    """

    name = "dask"

    def __init__(
        self, address: str | None = None, *, workers: int = 2, connect_timeout: float = 10.0
    ) -> None:
        try:
            distributed = importlib.import_module("distributed")
        except ImportError as err:
            raise _missing_extra("dask", err) from err
        self.workers = check_int("workers", workers, low=1)
        self._pending: dict[cf.Future[Any], Any] = {}
        self._cluster: Any = None
        if address is None:
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            target: Any = self._cluster
        else:
            check_address(address, timeout=connect_timeout, default_port=8786, what="Dask")
            target = address
        try:
            self._client = distributed.Client(target, timeout=f"{connect_timeout}s")
        except (OSError, TimeoutError) as err:
            self.close()
            raise ConfigError(
                f"`address` {address!r}: could not connect to the Dask scheduler ({err})"
            ) from err

    @property
    def slots(self) -> int:
        """Tasks in flight at once."""
        return self.workers

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        """Submit to the scheduler; a ``concurrent.futures`` view of the Dask future."""
        out: cf.Future[Any] = cf.Future()
        dask_future = self._client.submit(_call, fn, *args, pure=False, retries=0)
        self._pending[out] = dask_future  # Dask cancels a task whose future is dropped

        def done(f: Any) -> None:
            try:
                out.set_result(f.result())
            except BaseException as err:  # KilledWorker, CancelledError, ...
                out.set_exception(err)
            finally:
                self._pending.pop(out, None)

        dask_future.add_done_callback(done)
        return out

    def close(self) -> None:
        """Close the client (and the local cluster this runner started)."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def make_runner(
    name: str,
    *,
    workers: int = 2,
    address: str | None = None,
    connect_timeout: float = 10.0,
) -> Runner:
    """The runner called ``name`` (one of :data:`RUNNERS`).

    Raises:
        ConfigError: An unknown name, an address for a runner that takes none, a missing
            optional dependency or an address that does not answer.

    """
    if name not in RUNNERS:
        raise ConfigError(f"`runner` must be one of {list(RUNNERS)}, got {name!r}")
    if (
        isinstance(connect_timeout, bool)
        or not isinstance(connect_timeout, (int, float))
        or not math.isfinite(connect_timeout)
        or connect_timeout <= 0
    ):
        raise ConfigError(
            f"`connect_timeout` must be a number of seconds > 0, got {connect_timeout!r}"
        )
    if address is not None and name in ("process", "serial"):
        raise ConfigError(
            f"`address` is for the 'ray' and 'dask' runners; `runner` is {name!r}, got "
            f"address {address!r}"
        )
    if name == "serial":
        return SerialRunner()
    if name == "process":
        return ProcessRunner(workers)
    if name == "ray":
        return RayRunner(address, workers=workers, connect_timeout=connect_timeout)
    return DaskRunner(address, workers=workers, connect_timeout=connect_timeout)


def run_tasks(
    runner: Runner,
    lower: LowerLevel,
    tasks: Sequence[Mapping[str, Any]],
    on_result: Callable[[Mapping[str, Any], dict[str, Any], int], None],
    *,
    max_attempts: int = 3,
) -> None:
    """Evaluate every task through ``runner``; call ``on_result(task, result, attempts)`` once each.

    At most ``runner.slots`` tasks are in flight, so every submitted task is running. When a
    future raises (a worker died, say), the task is re-queued until it has failed
    ``max_attempts`` times, then recorded as a failure naming the error. A dead worker breaks a
    process pool and fails every task in flight at once: such failures are not counted, and
    those tasks are run alone from then on, where a failure is their own. ``attempts`` is the
    number of times a task was run.

    Raises:
        ConfigError: ``max_attempts`` below 1.

    """
    check_int("max_attempts", max_attempts, low=1)
    queue = deque(tasks)
    attempts: dict[str, int] = {}  # times run
    counted: dict[str, int] = {}  # failures while running alone
    alone: set[str] = set()  # failed beside others: run alone from now on
    in_flight: dict[cf.Future[Any], Mapping[str, Any]] = {}
    while queue or in_flight:
        while queue and len(in_flight) < runner.slots:
            if queue[0]["candidate"] in alone and in_flight:
                break  # wait until it can run alone
            task = queue.popleft()
            attempts[task["candidate"]] = attempts.get(task["candidate"], 0) + 1
            try:
                future = runner.submit(evaluate_task, lower, task)
            except Exception as err:  # e.g. the pool broke since the last check: a lost try
                future = cf.Future()
                future.set_exception(err)
            in_flight[future] = task
            if task["candidate"] in alone:
                break
        done, _ = cf.wait(list(in_flight), return_when=cf.FIRST_COMPLETED)
        shared = sum(future.exception() is not None for future in done) > 1
        lost = False
        for future in sorted(done, key=lambda f: str(in_flight[f]["candidate"])):
            task = in_flight.pop(future)
            candidate = task["candidate"]
            tries = attempts[candidate]
            error = future.exception()
            if error is None:
                on_result(task, future.result(), tries)
                continue
            lost = True
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if isinstance(error, BrokenProcessPool):
                reason = "a worker process died (BrokenProcessPool)"
            if shared and candidate not in alone:
                alone.add(candidate)  # one of several failed together: whose fault is unknown
            else:
                counted[candidate] = counted.get(candidate, 0) + 1
            if counted.get(candidate, 0) >= max_attempts:
                _log.warning("%s: giving up after %d tries: %s", candidate, tries, reason)
                on_result(task, failure_result(task, f"worker lost {tries} times: {reason}"), tries)
            else:
                _log.warning("%s: re-queued (try %d failed: %s)", candidate, tries, reason)
                queue.append(task)
        if lost:
            runner.recover()
