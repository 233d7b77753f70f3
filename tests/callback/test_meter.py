"""The budget, measured: how many generations an epoch's end runs, from seconds."""

from __future__ import annotations

import json
import logging

import pytest
import pytorch_lightning as pl

from evoaug import ConfigError, EvoAugCallback
from evoaug.callback import SearchMeter, plan_schedule
from evoaug.callback._schedule import paced, paced_by

# 10 epochs of 100 batches; a generation is estimated at 8 * 20 = 160 training batches.
PLAN = dict(max_epochs=10, batches_per_epoch=100, population_size=8, lookahead_steps=20)


def measured(epoch_seconds: float = 10.0, batch_seconds: float = 0.08) -> SearchMeter:
    return SearchMeter(epoch_seconds=[epoch_seconds], batch_seconds=[batch_seconds])


def test_pacing_spreads_a_total_and_never_postpones_a_generation_already_due() -> None:
    assert paced(4, 6) == [1, 0, 1, 1, 0, 1]
    assert paced(1, 6) == [0, 0, 0, 1, 0, 0]  # one generation: the middle of the slots
    assert paced(7, 3) == [2, 3, 2] and sum(paced(7, 3)) == 7
    assert paced(0, 4) == [0, 0, 0, 0] and paced(3, 0) == []
    for total in range(12):
        for slots in range(1, 9):
            counts = paced(total, slots)
            assert sum(counts) == total and min(counts) >= 0
            # Re-applied at every slot to the same total, the rule runs what it planned.
            assert all(paced_by(total, i, slots) == sum(counts[: i + 1]) for i in range(slots))


def test_the_first_generation_is_priced_from_the_estimate_at_the_measured_batch_time() -> None:
    plan = plan_schedule(**PLAN, search_budget=0.2)  # slots: epochs 0-5; one generation at 3
    assert plan.slots == (0, 1, 2, 3, 4, 5) and plan.generations_at == {3: 1}
    meter = measured()  # the fit: 10 s per epoch, 100 s; 20 s of budget; 160 * 0.08 = 12.8 s
    due = meter.due(plan, epoch=3, done=0, budget=0.2, max_epochs=10)
    assert (due.count, due.affordable) == (1, 1)
    assert due.generation_seconds == pytest.approx(12.8)
    assert due.left_seconds == pytest.approx(20.0)
    assert meter.due(plan, epoch=2, done=0, budget=0.2, max_epochs=10).count == 0  # not yet
    slow = measured(batch_seconds=0.2)  # 32 s for a generation: the budget pays for none
    assert slow.due(plan, epoch=3, done=0, budget=0.2, max_epochs=10).count == 0


def test_generations_measured_dearer_than_the_estimate_are_dropped() -> None:
    plan = plan_schedule(**PLAN, search_budget=0.5)  # the estimate buys 3 (at 0, 2/3, 5)
    assert plan.total_generations == 3
    meter = measured()  # 50 s of budget
    first = min(plan.generations_at)
    assert meter.due(plan, epoch=first, done=0, budget=0.5, max_epochs=10).count == 1
    meter.add_generation(40.0)  # 10 s left: the next is due but not affordable
    later = meter.due(plan, epoch=max(plan.generations_at), done=1, budget=0.5, max_epochs=10)
    assert (later.count, later.planned, later.affordable) == (0, 1, 0)
    assert later.describe(5, budget=0.5, planned_total=3) == (
        "evoaug: epoch 5: measured, a generation takes about 40.0s and the fit about 100.0s; "
        "the budget (50%) has 10.0s left, 0 more generations (the estimate planned 3 in all)."
    )


def test_generations_measured_cheaper_than_the_estimate_spend_the_rest_of_the_budget() -> None:
    plan = plan_schedule(**PLAN, search_budget=0.2)  # the estimate buys one, at epoch 3
    meter = measured()
    assert meter.due(plan, epoch=3, done=0, budget=0.2, max_epochs=10).count == 1
    meter.add_generation(2.0)  # 18 s left at 2 s each: 9 more, paced over the slots left
    counts = []
    for epoch in (4, 5):
        due = meter.due(plan, epoch=epoch, done=1 + sum(counts), budget=0.2, max_epochs=10)
        counts.append(due.count)
        for _ in range(due.count):
            meter.add_generation(2.0)
    assert sum(counts) == 9 and sum(meter.generation_seconds) == pytest.approx(20.0)


def test_the_plan_decides_until_something_is_measured_and_for_a_fixed_schedule() -> None:
    plan = plan_schedule(**PLAN, search_budget=0.2)
    assert SearchMeter().due(plan, epoch=3, done=0, budget=0.2, max_epochs=10).count == 1
    fixed = plan_schedule(**PLAN, search_budget=0.2, every_n_epochs=2)
    assert fixed.slots == ()
    broke = measured(batch_seconds=10.0)  # the budget pays for nothing; the fixed plan runs
    assert broke.due(fixed, epoch=2, done=1, budget=0.2, max_epochs=10).count == 1
    assert broke.due(plan, epoch=9, done=0, budget=0.2, max_epochs=10).count == 0  # no slot


def test_min_generations_runs_whatever_the_measured_cost() -> None:
    plan = plan_schedule(**PLAN, search_budget=0.01, min_generations=2)
    meter = measured(batch_seconds=10.0)  # a generation: 1,600 s of a 100 s fit
    done = 0
    for epoch in plan.slots:
        count = meter.due(
            plan, epoch=epoch, done=done, budget=0.01, max_epochs=10, min_generations=2
        ).count
        done += count
        for _ in range(count):
            meter.add_generation(1600.0)
    assert done == 2


def test_the_meter_times_epochs_and_the_median_training_step() -> None:
    meter = SearchMeter()
    meter.start_epoch(now=100.0)
    for start, end in ((101.0, 103.0), (103.5, 104.0), (104.2, 104.5), (105.0, 106.0)):
        meter.start_batch(now=start)  # the loader's time between steps is not counted
        meter.batch_done(now=end)
    meter.batch_done(now=107.0)  # an end without a start (a resumed epoch): not counted
    meter.end_epoch(now=110.0)
    assert meter.epoch_seconds == [10.0] and meter.batch_seconds == [0.75]
    meter.end_epoch(now=120.0)  # no epoch start: nothing measured
    assert meter.epoch_seconds == [10.0]


def test_the_summary_states_the_share_of_the_fit_the_search_spent() -> None:
    meter = SearchMeter(epoch_seconds=[10.0, 10.0])
    meter.add_generation(3.0)
    meter.add_generation(2.0)
    assert meter.summary(0.33) == (
        "evoaug: the search ran 2 generations in 5.0s, 25% of the 20.0s the fit trained and "
        "validated (search_budget=0.33)."
    )


def test_the_measurements_round_trip_and_a_bad_state_is_refused() -> None:
    meter = measured()
    meter.add_generation(3.5)
    meter.forgo(7.0)
    restored = SearchMeter()
    restored.load_state_dict(meter.state_dict())
    assert restored.state_dict() == {
        "epoch_seconds": [10.0], "batch_seconds": [0.08], "generation_seconds": [3.5],
        "forgone_seconds": [7.0],
    }  # fmt: skip
    old = {k: v for k, v in meter.state_dict().items() if k != "forgone_seconds"}
    restored.load_state_dict(old)  # a checkpoint from before the rest
    assert restored.forgone_seconds == []
    with pytest.raises(ConfigError, match="`generation_seconds` must be a list of non-negative"):
        restored.load_state_dict({**meter.state_dict(), "generation_seconds": [-1.0]})
    with pytest.raises(ConfigError, match="`epoch_seconds` must be a list"):
        restored.load_state_dict({"batch_seconds": [], "generation_seconds": []})


def test_a_fit_drops_a_generation_the_measured_budget_cannot_pay(tmp_path, lt, caplog) -> None:  # type: ignore[no-untyped-def]
    cb = EvoAugCallback(
        search_budget=10.0, population_size=4, lookahead_steps=2, lookahead_batch_size=16,
        train_probe_size=32, val_probe_size=32, n_genes=1, n_subpolicies=1,
    )  # fmt: skip
    add = cb.meter.add_generation
    cb.meter.add_generation = lambda seconds: add(seconds + 1e6)  # type: ignore[method-assign]
    train, val = lt.loaders()
    with caplog.at_level(logging.INFO):
        lt.trainer(tmp_path, [cb], max_epochs=4, logger=False).fit(lt.TinyNet(), train, val)
    assert cb.schedule is not None and cb.schedule.total_generations > 1
    assert cb.generation == 1  # the first ran; it "took" 10^6 s, so the budget paid no other
    assert len(cb.meter.epoch_seconds) == 4 and len(cb.meter.generation_seconds) == 1
    assert caplog.text.count("measured, a generation takes about") == 1  # the first decision
    assert "evoaug: the search ran 1 generations in 1000" in caplog.text
    saved = cb.state_dict()["meter"]
    assert saved["generation_seconds"][0] > 1e6 and len(saved["epoch_seconds"]) == 4


def test_a_fixed_period_runs_the_same_search_whatever_the_clock_says(tmp_path, lt) -> None:  # type: ignore[no-untyped-def]
    def fit(slow: bool) -> tuple[int, list[dict]]:
        cb = EvoAugCallback(
            every_n_epochs=1, population_size=4, lookahead_steps=2, lookahead_batch_size=16,
            train_probe_size=32, val_probe_size=32, n_genes=1, n_subpolicies=1, seed=3,
        )  # fmt: skip
        if slow:  # every generation "takes" 10^6 s: a budget would pay for none after it
            add = cb.meter.add_generation
            cb.meter.add_generation = lambda seconds: add(seconds + 1e6)  # type: ignore[method-assign]
        pl.seed_everything(0, verbose=False)
        train, val = lt.loaders()
        root = tmp_path / ("slow" if slow else "fast")
        lt.trainer(root, [cb], max_epochs=3, logger=False).fit(lt.TinyNet(), train, val)
        assert cb.run_dir is not None
        lines = (cb.run_dir / "timeline.jsonl").read_text().splitlines()
        return cb.generation, [json.loads(line)["policy"] for line in lines]

    fast, slow = fit(slow=False), fit(slow=True)
    assert fast[0] == 2  # warmup_epochs=1: epochs 1 and 2
    assert slow == fast


def test_forgone_generations_leave_the_budget() -> None:
    plan = plan_schedule(**PLAN, search_budget=0.2)  # 20 s of a 100 s fit
    meter = measured()
    assert meter.due(plan, epoch=3, done=0, budget=0.2, max_epochs=10).affordable == 1
    meter.forgo(12.8)  # a rest skipped the one the budget paid for
    assert meter.due(plan, epoch=4, done=0, budget=0.2, max_epochs=10).affordable == 0
