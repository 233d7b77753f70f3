"""The pace: the measured budget, the rest and the floor, together at each epoch's end."""

from __future__ import annotations

from evoaug import EvoAugCallback
from evoaug.callback import SearchMeter, plan_schedule
from evoaug.callback._pace import Pace

# 10 epochs of 100 batches; a generation is estimated at 8 * 20 = 160 training batches.
PLAN = dict(max_epochs=10, batches_per_epoch=100, population_size=8, lookahead_steps=20)


def pace(**settings: object) -> tuple[Pace, list[str]]:
    lines: list[str] = []
    cb = EvoAugCallback(search_budget=0.5, **settings)  # type: ignore[arg-type]
    made = Pace(cb.config, log=lines.append)
    made.schedule = plan_schedule(**PLAN, search_budget=0.5)
    # 10 s epochs, a 0.08 s training batch: a generation is priced at 12.8 s of 50 s.
    made.meter = SearchMeter(epoch_seconds=[10.0], batch_seconds=[0.08])
    return made, lines


def test_nothing_is_due_before_the_schedule_is_made() -> None:
    made, lines = pace()
    made.schedule = None
    assert made.due(epoch=0, first=0, ran=0, max_epochs=10) == 0 and lines == []


def test_the_first_measured_count_is_logged_once() -> None:
    made, lines = pace()
    first = min(made.schedule.generations_at)  # type: ignore[union-attr]
    assert made.due(epoch=first, first=0, ran=0, max_epochs=10) == 1
    made.due(epoch=first, first=0, ran=1, max_epochs=10)
    assert len(lines) == 1 and lines[0].startswith(
        f"evoaug: epoch {first}: measured, a generation takes about 12.8s"
    )


def test_a_rest_stops_the_generations_the_budget_pays_for_and_they_leave_it() -> None:
    made, lines = pace(patience=1)
    assert made.record(0, changed=False) == 2  # one idle generation: rests until epoch 2
    assert lines[-1] == (
        "evoaug: 1 generations in a row changed nothing (patience=1); the search rests until "
        "the end of epoch 2"
    )
    first = min(made.schedule.generations_at)  # type: ignore[union-attr]
    assert first < 2
    assert made.due(epoch=first, first=0, ran=0, max_epochs=10) == 0
    assert made.meter.forgone_seconds == [12.8]  # no later epoch catches up on it
    assert made.record(3, changed=True) is None and not made.rest.resting


def test_the_floor_runs_whatever_the_rest_says() -> None:
    made, _ = pace(patience=1, min_generations=2)
    made.record(0, changed=False)
    first = min(made.schedule.generations_at)  # type: ignore[union-attr]
    assert made.due(epoch=first, first=0, ran=0, max_epochs=10) == 1  # below the floor of 2
    assert made.meter.forgone_seconds == []


def test_a_fixed_schedule_never_rests() -> None:
    made, _ = pace(patience=1, every_n_epochs=2)
    assert made.rest.patience is None
    assert made.record(0, changed=False) is None and not made.rest.resting


def test_the_summary_says_when_the_fit_ended_resting() -> None:
    made, _ = pace(patience=1)
    assert made.summary() is None  # no generation ran
    made.meter.add_generation(5.0)
    assert "It ended resting" not in (made.summary() or "")
    made.record(0, changed=False)
    summary = made.summary()
    assert summary is not None and summary.endswith(
        "It ended resting: its last 1 generations changed nothing (patience=1)."
    )
