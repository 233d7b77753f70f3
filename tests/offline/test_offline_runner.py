"""Runners: re-queue when a worker dies, never double-count; cluster addresses fail fast."""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import sys
import textwrap
import threading
from collections.abc import Callable, Mapping
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from evoaug import ConfigError, GenomeSpace, Policy
from evoaug.offline import (
    OfflineSearch,
    ProcessRunner,
    Runner,
    SerialRunner,
    SyntheticObjectives,
    check_address,
    make_runner,
    run_tasks,
)
from evoaug.search import read_history

LOWER = SyntheticObjectives(("accuracy", "diversity"), noise=0.0)


def _tasks(n: int) -> list[dict[str, Any]]:
    return [
        {"candidate": f"g0000-c{i:03d}", "policy": Policy.preset("identity").to_dict(), "seed": 0}
        for i in range(n)
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


def _collect(runner: Runner, n: int, **kw: Any) -> dict[str, tuple[dict[str, Any], int]]:
    got: dict[str, tuple[dict[str, Any], int]] = {}

    def on_result(task: Mapping[str, Any], result: dict[str, Any], attempts: int) -> None:
        assert task["candidate"] not in got, "reported twice"
        got[task["candidate"]] = (result, attempts)

    run_tasks(runner, LOWER, _tasks(n), on_result, **kw)
    return got


def test_a_lost_worker_requeues_the_candidate_and_reports_it_once() -> None:
    runner = FlakyRunner({"g0000-c001": 2})
    got = _collect(runner, 4, max_attempts=3)
    assert sorted(got) == [f"g0000-c{i:03d}" for i in range(4)]
    assert got["g0000-c001"][1] == 3 and got["g0000-c001"][0]["failure"] is None
    assert runner.submitted.count("g0000-c001") == 3
    assert runner.recovered == 2
    assert all(got[c][1] == 1 for c in got if c != "g0000-c001")


def test_after_max_attempts_the_candidate_is_recorded_failed_not_dropped() -> None:
    got = _collect(FlakyRunner({"g0000-c002": 5}), 3, max_attempts=2)
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


DIE_ONCE = '''
import os
from pathlib import Path
from evoaug.offline import SyntheticObjectives

class DieOnce(SyntheticObjectives):
    """Kills its worker process the first time it scores a policy named `victim`."""

    def __init__(self, marker):
        super().__init__(("accuracy",), noise=0.0)
        self.marker = marker

    def __call__(self, policy, *, seed):
        if policy.name == "victim" and not Path(self.marker).exists():
            Path(self.marker).write_text("died")
            os._exit(3)
        return super().__call__(policy, seed=seed)
'''


@pytest.mark.slow
def test_process_pool_survives_a_worker_that_dies_mid_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "die_once.py").write_text(textwrap.dedent(DIE_ONCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path), prepend=":")  # for the spawned workers
    spec = importlib.util.spec_from_file_location("die_once", tmp_path / "die_once.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "die_once", module)
    spec.loader.exec_module(module)
    lower = module.DieOnce(str(tmp_path / "marker"))
    tasks = _tasks(4)
    tasks[1]["policy"] = Policy.preset("identity").to_dict() | {"name": "victim"}
    got: dict[str, tuple[dict[str, Any], int]] = {}

    def on_result(task: Mapping[str, Any], result: dict[str, Any], attempts: int) -> None:
        assert task["candidate"] not in got
        got[task["candidate"]] = (result, attempts)

    with ProcessRunner(workers=2, threads_per_worker=1) as runner:
        run_tasks(runner, lower, tasks, on_result, max_attempts=3)
    assert (tmp_path / "marker").read_text() == "died"
    assert sorted(got) == [t["candidate"] for t in tasks]
    assert all(result["failure"] is None for result, _ in got.values())
    assert got["g0000-c001"][1] == 2  # died once, then scored


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


@pytest.mark.parametrize(("runner", "module"), [("ray", "ray"), ("dask", "distributed")])
def test_cluster_runner_without_its_extra_names_what_to_install(runner: str, module: str) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed")
    with pytest.raises(ConfigError, match=rf"pip install 'evoaug\[{runner}\]'"):
        make_runner(runner)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("runner", "module", "extra"),
    [("dask", "distributed", "dask.distributed"), ("ray", "ray", "ray")],
)
def test_local_cluster_runs_a_search(tmp_path: Path, runner: str, module: str, extra: str) -> None:
    pytest.importorskip(module, reason=f"{extra} not installed (evoaug[{runner}])")
    space = GenomeSpace(["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=1)
    with make_runner(runner, workers=2) as pool:
        OfflineSearch(LOWER, out=tmp_path, generations=2, population_size=4, space=space).run(pool)
    records, _ = read_history(tmp_path / "evoaug" / "history.jsonl")
    assert len({r["candidate"] for r in records}) == len(records) == 8


def test_a_submit_that_raises_counts_as_a_lost_try() -> None:
    class BrokenOnce(FlakyRunner):
        def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
            if not self.submitted:
                self.submitted.append("refused")
                raise RuntimeError("pool is broken")
            return super().submit(fn, *args)

    runner = BrokenOnce({})
    got = _collect(runner, 2)
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
    got = _collect(BreakingPoolRunner("g0000-c001"), 2, max_attempts=2)
    healthy, tries = got["g0000-c000"]
    assert healthy["failure"] is None and healthy["objectives"] is not None
    assert tries == 2  # broken beside the victim, then scored alone
    victim, tries = got["g0000-c001"]
    assert victim["failure"].startswith("worker lost 3 times") and tries == 3  # 1 shared + 2 alone
