"""Runners: re-queue when a worker dies, never double-count; cluster addresses fail fast.

The tests on real workers run on a process pool, a local Ray cluster and a local Dask cluster
(the ``runner`` fixture). Without ``ray`` or ``dask.distributed`` installed those tests skip,
naming the extra to install; ``EVOAUG_REQUIRE_EXTRAS=1`` (CI) makes them fail instead.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from evoaug import ConfigError, GenomeSpace, Policy
from evoaug.offline import (
    DaskRunner,
    OfflineSearch,
    ProcessRunner,
    RayRunner,
    Runner,
    SerialRunner,
    SyntheticObjectives,
    check_address,
    evaluate_task,
    make_runner,
    run_tasks,
)
from evoaug.search import read_history

LOWER = SyntheticObjectives(("accuracy", "diversity"), noise=0.0)
NOISY = SyntheticObjectives(("accuracy", "diversity"), noise=0.05)  # noise from a policy hash
SPACE = GenomeSpace(["Identity", "Invert", "Rotate", "Zoom", "Solarize"], n_subpolicies=2)
Results = dict[str, tuple[dict[str, Any], int]]


def _tasks(n: int, *, distinct: bool = False) -> list[dict[str, Any]]:
    """``n`` tasks of the identity policy, or of ``n`` different random policies."""
    if distinct:
        genomes = SPACE.random(np.random.default_rng(0), n)
        policies = [SPACE.decode(x).to_dict() for x in genomes]
    else:
        policies = [Policy.preset("identity").to_dict()] * n
    return [
        {"candidate": f"g0000-c{i:03d}", "policy": policy, "seed": i}
        for i, policy in enumerate(policies)
    ]


class FlakyRunner(Runner):
    """Runs in-process; the first ``losses[cid]`` submissions of a candidate 'lose the worker'."""

    def __init__(self, losses: Mapping[str, int], slots: int = 2) -> None:
        self.losses = dict(losses)
        self._slots = slots
        self.submitted: list[str] = []
        self.recovered = 0

    @property
    def slots(self) -> int:
        return self._slots

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        cid = args[1]["candidate"]
        self.submitted.append(cid)
        future: cf.Future[Any] = cf.Future()
        if self.losses.get(cid, 0) > 0:
            self.losses[cid] -= 1
            future.set_exception(ConnectionError("node lost"))
        else:
            future.set_result(fn(*args))
        return future

    def recover(self) -> None:
        self.recovered += 1


def _collect(runner: Runner, tasks: list[dict[str, Any]], lower: Any = LOWER, **kw: Any) -> Results:
    """``{candidate: (result, attempts)}`` from :func:`run_tasks`; each reported once."""
    got: Results = {}

    def on_result(task: Mapping[str, Any], result: dict[str, Any], attempts: int) -> None:
        assert task["candidate"] not in got, "reported twice"
        got[task["candidate"]] = (result, attempts)

    run_tasks(runner, lower, tasks, on_result, **kw)
    return got


def test_a_lost_worker_requeues_the_candidate_and_reports_it_once() -> None:
    runner = FlakyRunner({"g0000-c001": 2})
    got = _collect(runner, _tasks(4), max_attempts=3)
    assert sorted(got) == [f"g0000-c{i:03d}" for i in range(4)]
    assert got["g0000-c001"][1] == 3 and got["g0000-c001"][0]["failure"] is None
    assert runner.submitted.count("g0000-c001") == 3
    assert runner.recovered == 2
    assert all(got[c][1] == 1 for c in got if c != "g0000-c001")


def test_after_max_attempts_the_candidate_is_recorded_failed_not_dropped() -> None:
    got = _collect(FlakyRunner({"g0000-c002": 5}), _tasks(3), max_attempts=2)
    result, attempts = got["g0000-c002"]
    assert attempts == 2 and result["objectives"] is None
    assert result["failure"] == "worker lost 2 times: ConnectionError: node lost"


def test_search_history_records_attempts_and_scores_a_lost_candidate_worst(
    tmp_path: Path,
) -> None:
    space = GenomeSpace(["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=1)
    search = OfflineSearch(
        LOWER, out=tmp_path, generations=2, population_size=4, space=space, max_attempts=2
    )
    search.run(FlakyRunner({"g0000-c001": 1, "g0001-c000": 9}))
    records, _ = read_history(tmp_path / "evoaug" / "history.jsonl")
    by_id = {r["candidate"]: r for r in records}
    assert len(records) == len(by_id) == 8
    assert by_id["g0000-c001"]["attempts"] == 2 and by_id["g0000-c001"]["failure"] is None
    assert by_id["g0001-c000"]["objectives"] is None
    assert by_id["g0001-c000"]["failure"].startswith("worker lost 2 times")


def test_a_candidates_own_exception_is_a_failure_without_retry() -> None:
    class Broken(SyntheticObjectives):
        def __call__(self, policy: Policy, *, seed: int) -> dict[str, float]:
            raise RuntimeError("CUDA out of memory")

    got: dict[str, Any] = {}
    run_tasks(
        SerialRunner(),
        Broken(("accuracy",)),
        _tasks(1),
        lambda t, r, a: got.update({t["candidate"]: (r, a)}),
    )
    result, attempts = got["g0000-c000"]
    assert attempts == 1 and result["failure"] == "RuntimeError: CUDA out of memory"


def test_unreachable_address_fails_fast_with_a_clear_message() -> None:
    with pytest.raises(ConfigError, match=r"`address` '127.0.0.1:1': no Dask cluster answered"):
        check_address("127.0.0.1:1", timeout=2.0, default_port=8786, what="Dask")
    with pytest.raises(ConfigError, match=r"`address` must look like host:port, got 'tcp://:99'"):
        check_address("tcp://:99", timeout=1.0, default_port=8786, what="Dask")


def test_make_runner_rejects_unknown_names_and_misplaced_addresses() -> None:
    with pytest.raises(ConfigError, match=r"`runner` must be one of \['process', 'ray', 'dask', "):
        make_runner("slurm")
    with pytest.raises(ConfigError, match=r"`address` is for the 'ray' and 'dask' runners"):
        make_runner("process", address="10.0.0.1:6379")
    with pytest.raises(ConfigError, match=r"`workers` must be an int >= 1, got 0"):
        make_runner("process", workers=0)
    for timeout in (-3.0, float("nan"), 0, True):
        with pytest.raises(ConfigError, match=r"`connect_timeout` must be a number of seconds > 0"):
            make_runner("ray", address="10.0.0.1:6379", connect_timeout=timeout)


EXTRAS = [("ray", "ray"), ("dask", "distributed")]  # runner name, module it imports
CLUSTER_TIMEOUT = 180  # seconds, cluster start included: a hang fails fast, with stacks


@pytest.mark.parametrize(("name", "module"), EXTRAS)
def test_cluster_runner_without_its_extra_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import ray` now raises ImportError
    with pytest.raises(
        ConfigError, match=rf"needs the optional dependency .*pip install 'evoaug\[{name}\]'"
    ):
        make_runner(name)


def _own_cluster_workers(name: str, module: ModuleType) -> int | None:
    """Workers of the local cluster this process runs, or None when it runs none."""
    if name == "ray":
        return int(module.cluster_resources()["CPU"]) if module.is_initialized() else None
    try:
        return len(module.default_client().scheduler_info()["workers"])
    except ValueError:  # no client
        return None


@pytest.mark.slow
@pytest.mark.timeout(CLUSTER_TIMEOUT)
@pytest.mark.parametrize(("name", "module"), EXTRAS)
def test_a_runner_without_address_starts_and_stops_its_own_cluster(
    tmp_path: Path, import_extra: Callable[[str, str], ModuleType], name: str, module: str
) -> None:
    cluster = import_extra(module, name)
    assert _own_cluster_workers(name, cluster) is None
    space = GenomeSpace(["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=1)
    with make_runner(name, workers=2) as pool:
        assert pool.slots == 2 and _own_cluster_workers(name, cluster) == 2
        OfflineSearch(LOWER, out=tmp_path, generations=2, population_size=4, space=space).run(pool)
    assert _own_cluster_workers(name, cluster) is None
    records, _ = read_history(tmp_path / "evoaug" / "history.jsonl")
    assert len({r["candidate"] for r in records}) == len(records) == 8
    assert all(r["failure"] is None for r in records)


def test_a_submit_that_raises_counts_as_a_lost_try() -> None:
    class BrokenOnce(FlakyRunner):
        def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
            if not self.submitted:
                self.submitted.append("refused")
                raise RuntimeError("pool is broken")
            return super().submit(fn, *args)

    runner = BrokenOnce({})
    got = _collect(runner, _tasks(2))
    assert sorted(got) == ["g0000-c000", "g0000-c001"] and runner.recovered == 1
    assert got["g0000-c000"][1] == 2 and got["g0000-c000"][0]["failure"] is None


class BreakingPoolRunner(Runner):
    """An in-process pool: when ``victim`` runs, every task in flight fails with it.

    A process pool does this when a worker dies: the tasks of the other workers fail too.
    Tasks submitted together (within 50 ms) run as one batch on a timer thread.
    """

    def __init__(self, victim: str, slots: int = 2) -> None:
        self.victim, self._slots = victim, slots
        self._pending: list[tuple[cf.Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    @property
    def slots(self) -> int:
        return self._slots

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        with self._lock:
            self._pending.append((future, fn, args))
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(0.05, self._run_batch)
            self._timer.start()
        return future

    def _run_batch(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if any(args[1]["candidate"] == self.victim for _, _, args in batch):
            for future, _, _ in batch:
                future.set_exception(BrokenProcessPool("a worker died"))
        else:
            for future, fn, args in batch:
                future.set_result(fn(*args))


def test_a_worker_that_always_dies_does_not_take_its_neighbours_with_it() -> None:
    """Only the candidate that kills its worker runs out of attempts; the neighbour that failed
    beside it is run again, alone, and scored."""
    got = _collect(BreakingPoolRunner("g0000-c001"), _tasks(2), max_attempts=2)
    healthy, tries = got["g0000-c000"]
    assert healthy["failure"] is None and healthy["objectives"] is not None
    assert tries == 2  # broken beside the victim, then scored alone
    victim, tries = got["g0000-c001"]
    assert victim["failure"].startswith("worker lost 3 times") and tries == 3  # 1 shared + 2 alone


# ---------------------------------------------------------------- real workers

RUNNERS = ["process", "ray", "dask"]


@contextlib.contextmanager
def _start(name: str, import_extra: Callable[[str, str], ModuleType]) -> Iterator[Runner]:
    """A runner of two single-threaded workers: a process pool, or a local cluster started here
    (Ray: two CPUs, one per task; Dask: two worker processes of one thread), torn down after."""
    if name == "process":
        with ProcessRunner(workers=2, threads_per_worker=1) as runner:
            yield runner
    elif name == "ray":
        ray = import_extra("ray", "ray")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            assert ray.cluster_resources()["CPU"] == 2
            with RayRunner(workers=2) as runner:  # joins the running instance
                yield runner
        finally:
            ray.shutdown()
    else:
        distributed = import_extra("distributed", "dask")
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # Without a dashboard the scheduler still serves HTTP, by default on 8787, which
            # another cluster (a concurrent test run) may hold: a free port instead.
            scheduler_kwargs={"dashboard_address": ":0"},
        ) as cluster:
            assert len(cluster.workers) == 2
            with DaskRunner(cluster.scheduler_address, workers=2) as runner:
                yield runner


# Slow: each starts worker processes that import torch (10 to 25 s on two cores).
@pytest.fixture(scope="module", params=[pytest.param(n, marks=pytest.mark.slow) for n in RUNNERS])
def runner(
    request: pytest.FixtureRequest,
    worker_tasks: ModuleType,
    import_extra: Callable[[str, str], ModuleType],
) -> Iterator[Runner]:
    """Each runner of real workers, started once for the module (workers import worker_tasks)."""
    with _start(request.param, import_extra) as started:
        yield started


def _scores(result: Mapping[str, Any]) -> tuple[Any, ...]:
    """A result without what depends on where and how fast it ran."""
    return result["candidate"], result["objectives"], result["failure"]


def _serial(tasks: list[dict[str, Any]], lower: Any) -> dict[str, tuple[Any, ...]]:
    return {c: _scores(result) for c, (result, _) in _collect(SerialRunner(), tasks, lower).items()}


@pytest.mark.timeout(CLUSTER_TIMEOUT)
def test_results_come_back_in_order_and_equal_the_serial_runners(runner: Runner) -> None:
    tasks = _tasks(8, distinct=True)
    serial = _serial(tasks, NOISY)
    assert len({scores[1]["accuracy"] for scores in serial.values()}) == 8  # all different
    futures = [runner.submit(evaluate_task, NOISY, task) for task in tasks]
    assert [_scores(f.result(timeout=120)) for f in futures] == list(serial.values())
    got = _collect(runner, tasks, NOISY)
    assert {c: _scores(result) for c, (result, _) in got.items()} == serial
    assert all(attempts == 1 for _, attempts in got.values())


@pytest.mark.timeout(CLUSTER_TIMEOUT)
def test_tasks_run_at_once_on_as_many_workers_as_slots(
    runner: Runner, worker_tasks: ModuleType, tmp_path: Path
) -> None:
    assert runner.slots == 2
    lower = worker_tasks.Rendezvous(str(tmp_path), parties=runner.slots)
    got = _collect(runner, _tasks(6), lower)
    assert all(result["failure"] is None for result, _ in got.values()), got
    workers = {result["worker"] for result, _ in got.values()}
    hosts, pids = zip(*(worker.split(":") for worker in workers), strict=True)
    assert set(hosts) == {socket.gethostname()} and str(os.getpid()) not in pids
    assert len(workers) == 2, workers  # the first two met: two workers, neither this process


@pytest.mark.timeout(CLUSTER_TIMEOUT)
def test_a_failing_candidate_is_a_failure_and_the_others_are_scored(
    runner: Runner, worker_tasks: ModuleType
) -> None:
    tasks = _tasks(5, distinct=True)
    tasks[2]["policy"] = tasks[2]["policy"] | {"name": "broken"}
    lower = worker_tasks.FailsOn("broken")
    got = _collect(runner, tasks, lower)
    result, attempts = got.pop("g0000-c002")
    assert attempts == 1 and result["objectives"] is None  # a candidate's error: never retried
    assert result["failure"] == "RuntimeError: cannot train 'broken'"
    serial = _serial([t for t in tasks if t["candidate"] != "g0000-c002"], lower)
    assert {c: _scores(result) for c, (result, _) in got.items()} == serial
    # An exception that escapes the task reaches its future alone; the neighbour completes.
    lost, neighbour = runner.submit(worker_tasks.fail, "node lost"), runner.submit(pow, 2, 10)
    with pytest.raises(ValueError, match="node lost"):
        lost.result(timeout=120)
    assert neighbour.result(timeout=120) == 1024


# Dask's scheduler itself re-runs a task whose worker died, on another worker: one try here.
TRIES_OF_A_DEAD_WORKERS_CANDIDATE = {"process": 2, "ray": 2, "dask": 1}


@pytest.mark.timeout(CLUSTER_TIMEOUT)
def test_a_worker_that_dies_mid_candidate_costs_one_try_and_the_search_goes_on(
    runner: Runner, worker_tasks: ModuleType, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    lower = worker_tasks.DieOnce(str(tmp_path / "marker"))
    tasks = _tasks(4)
    tasks[1]["policy"] = tasks[1]["policy"] | {"name": "victim"}
    got = _collect(runner, tasks, lower, max_attempts=3)
    assert (tmp_path / "marker").read_text() == "died"
    assert sorted(got) == [t["candidate"] for t in tasks]
    assert all(result["failure"] is None for result, _ in got.values())
    name = request.node.callspec.params["runner"]
    assert got["g0000-c001"][1] == TRIES_OF_A_DEAD_WORKERS_CANDIDATE[name]  # died, then scored
