"""Choosing a runner by name, and driving tasks through it until each has a result.

A future that *raises* means the evaluation did not happen (the worker process died, a node
left the cluster): the dispatcher (:func:`run_tasks`) re-queues the candidate, up to
``max_attempts`` tries, and records it as failed after that. A candidate's own error never
raises here (see :func:`~evoaug.offline._task.evaluate_task`). Each candidate's result is handed
to ``on_result`` exactly once.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.offline._cluster import DaskRunner, RayRunner
from evoaug.offline._runner import ProcessRunner, Runner, SerialRunner
from evoaug.offline._task import LowerLevel, evaluate_task, failure_result

__all__ = ["RUNNERS", "make_runner", "run_tasks"]

RUNNERS = ("process", "ray", "dask", "serial")
_log = logging.getLogger(__name__)


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
