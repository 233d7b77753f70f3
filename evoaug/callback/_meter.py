"""What the search costs, measured, against its budget: how many generations run now.

The schedule (:mod:`evoaug.callback._schedule`) prices a generation before the fit, in
training-batch equivalents; the price is off wherever a look-ahead step, a forward pass or the
data loader costs more or less than it assumes (the device, the model, the loader). The meter
measures instead: the wall-clock seconds of every training epoch (validation included,
generations not: what the fit costs without the search), the seconds of the training steps
(``on_train_batch_start`` to ``on_train_batch_end``: forward, backward and optimizer, without
the loader and the Trainer's per-batch work, which a look-ahead step does not pay either), and
every generation's seconds.

At the end of each epoch the schedule may search in, it predicts what a generation takes (the
mean of the generations measured so far; before the first, the schedule's price at the measured
seconds of a training step) and how many more the budget pays for: ``search_budget`` times the
fit's projected seconds (the mean epoch times ``max_epochs``), less what the search has spent
and what it gave back while resting (:mod:`evoaug.callback._rest`: the generations the budget
paid for at an epoch end where the search rested leave the budget, so that no later epoch
catches up on them).
:func:`~evoaug.callback._schedule.paced` spreads them over the search epochs left.

Measured time varies between runs, so the number of generations may too. A run that must repeat
exactly fixes its generations with ``every_n_epochs``, which the budget does not govern.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evoaug.callback._schedule import Schedule, paced_by
from evoaug.exceptions import ConfigError

__all__ = ["Due", "SearchMeter"]


@dataclass(frozen=True)
class Due:
    """How many generations an epoch's end runs, and why.

    Attributes:
        count: Generations to run now.
        planned: What the schedule's estimate planned for this epoch.
        generation_seconds: The predicted seconds of one generation (0 when unmeasured).
        left_seconds: What the budget has left before these generations run.
        affordable: Generations the budget still pays for.
        projected_seconds: The fit's projected seconds without the search.
    """

    count: int
    planned: int
    generation_seconds: float = 0.0
    left_seconds: float = 0.0
    affordable: int = 0
    projected_seconds: float = 0.0

    @property
    def measured(self) -> bool:
        """Whether measured seconds decided (not the estimate's plan)."""
        return self.generation_seconds > 0

    def describe(self, epoch: int, *, budget: float, planned_total: int) -> str:
        """The log line of the first measured decision: the measured cost against the estimate."""
        return (
            f"evoaug: epoch {epoch}: measured, a generation takes about "
            f"{self.generation_seconds:.1f}s and the fit about {self.projected_seconds:.1f}s; "
            f"the budget ({budget:.0%}) has {max(self.left_seconds, 0.0):.1f}s left, "
            f"{self.affordable} more generations (the estimate planned {planned_total} in all)."
        )


@dataclass
class SearchMeter:
    """Wall-clock seconds of the fit's epochs, its training batches and the generations.

    The callback calls :meth:`start_epoch`, :meth:`start_batch`, :meth:`batch_done` and
    :meth:`end_epoch` from its training hooks, times every generation into
    :meth:`add_generation`, and asks :meth:`due` at each epoch's end how many generations to run.

    Example:
        >>> from evoaug.callback import plan_schedule
        >>> plan = plan_schedule(max_epochs=10, batches_per_epoch=100, population_size=8,
        ...                      lookahead_steps=20, search_budget=0.2)
        >>> meter = SearchMeter(epoch_seconds=[10.0], batch_seconds=[0.08])
        >>> meter.due(plan, epoch=3, done=0, budget=0.2, max_epochs=10).count  # 12.8 s of 20
        1
        >>> meter.add_generation(30.0)  # a generation took far more than its estimate
        >>> meter.due(plan, epoch=4, done=1, budget=0.2, max_epochs=10).affordable
        0
    """

    epoch_seconds: list[float] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)
    generation_seconds: list[float] = field(default_factory=list)
    forgone_seconds: list[float] = field(default_factory=list)
    _epoch_start: float | None = field(default=None, repr=False)
    _batch_start: float | None = field(default=None, repr=False)
    _steps: list[float] = field(default_factory=list, repr=False)

    def start_epoch(self, now: float | None = None) -> None:
        """A training epoch begins."""
        self._epoch_start = time.perf_counter() if now is None else now
        self._batch_start = None
        self._steps = []

    def start_batch(self, now: float | None = None) -> None:
        """A training step begins (the batch is loaded and augmented)."""
        self._batch_start = time.perf_counter() if now is None else now

    def batch_done(self, now: float | None = None) -> None:
        """A training step ended."""
        now = time.perf_counter() if now is None else now
        if self._batch_start is not None:
            self._steps.append(now - self._batch_start)
        self._batch_start = None

    def end_epoch(self, now: float | None = None) -> None:
        """The epoch's training and validation are done; its generations have not run."""
        now = time.perf_counter() if now is None else now
        if self._epoch_start is not None:
            self.epoch_seconds.append(now - self._epoch_start)
        if self._steps:
            self.batch_seconds.append(statistics.median(self._steps))
        self._epoch_start = None
        self._batch_start = None
        self._steps = []

    def add_generation(self, seconds: float) -> None:
        """A generation took ``seconds``."""
        self.generation_seconds.append(seconds)

    def forgo(self, seconds: float) -> None:
        """Generations the budget paid for did not run (the search rests).

        Their ``seconds`` leave the budget, so that later epochs do not catch up on them.
        """
        self.forgone_seconds.append(seconds)

    def predicted_generation(self, schedule: Schedule) -> float:
        """Seconds one generation is expected to take (0 when nothing is measured yet)."""
        if self.generation_seconds:
            return statistics.fmean(self.generation_seconds)
        if self.batch_seconds:
            return schedule.per_generation * statistics.median(self.batch_seconds)
        return 0.0

    def due(
        self,
        schedule: Schedule,
        *,
        epoch: int,
        done: int,
        budget: float,
        max_epochs: int,
        min_generations: int = 0,
        ran: int = 0,
    ) -> Due:
        """How many more generations the end of ``epoch`` runs.

        Asked again after each generation (``ran`` of them at this epoch's end so far), so
        that a generation dearer than predicted stops the rest.

        Args:
            schedule: The plan from the estimate; its ``slots`` are the search epochs.
            epoch: The epoch that just ended.
            done: Generations run so far in this fit (and before it, when resumed), ``ran``
                included.
            budget: ``search_budget``: the fraction of the fit's seconds the search may spend.
            max_epochs: Epochs in the fit.
            min_generations: Generations to run whatever the budget says.
            ran: Generations already run at this epoch's end.

        Returns:
            The plan's count for a fixed schedule (no slots), for an epoch outside the slots,
            and before anything is measured; otherwise the measured count.
        """
        planned = schedule.generations_at.get(epoch, 0)
        unmeasured = Due(max(planned - ran, 0), planned)
        if not schedule.slots or epoch not in schedule.slots or not self.epoch_seconds:
            return unmeasured
        per_generation = self.predicted_generation(schedule)
        if per_generation <= 0:
            return unmeasured
        projected = statistics.fmean(self.epoch_seconds) * max_epochs
        left = budget * projected - sum(self.generation_seconds) - sum(self.forgone_seconds)
        affordable = max(0, math.floor(left / per_generation + 1e-9))
        total = max(done + affordable, min_generations)
        slot = schedule.slots.index(epoch)
        count = max(0, paced_by(total, slot, len(schedule.slots)) - done)
        count = min(count, max(affordable, min_generations - done))
        return Due(count, max(planned - ran, 0), per_generation, left, affordable, projected)

    def summary(self, budget: float) -> str:
        """The log line at the fit's end: what the search spent against its budget."""
        spent = sum(self.generation_seconds)
        fit = sum(self.epoch_seconds)
        share = spent / fit if fit > 0 else 0.0
        return (
            f"evoaug: the search ran {len(self.generation_seconds)} generations in {spent:.1f}s, "
            f"{share:.0%} of the {fit:.1f}s the fit trained and validated "
            f"(search_budget={budget:g})."
        )

    def state_dict(self) -> dict[str, list[float]]:
        """The measurements, as plain lists (a checkpoint keeps them)."""
        return {
            "epoch_seconds": list(self.epoch_seconds),
            "batch_seconds": list(self.batch_seconds),
            "generation_seconds": list(self.generation_seconds),
            "forgone_seconds": list(self.forgone_seconds),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s measurements.

        Raises:
            ConfigError: A key is missing or a value is not a list of non-negative numbers.
        """
        state = {"forgone_seconds": [], **state}  # checkpoints from before the rest lack it
        for name in ("epoch_seconds", "batch_seconds", "generation_seconds", "forgone_seconds"):
            values = state.get(name)
            if not isinstance(values, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values
            ):
                raise ConfigError(
                    f"checkpoint's evoaug meter state: `{name}` must be a list of non-negative "
                    f"seconds, got {values!r}"
                )
            setattr(self, name, [float(v) for v in values])
