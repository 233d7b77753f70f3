"""How many generations run at an epoch's end: the measured budget, the rest and the floor.

Three rules meet here, each in its own module: what the budget pays for, measured
(:class:`~evoaug.callback.SearchMeter`); whether a search that keeps changing nothing waits
(:class:`~evoaug.callback.SearchRest`); and ``min_generations``, a floor that runs whatever the
rest says. The callback asks before each generation of an epoch's end and, under DDP, broadcasts
rank 0's answer (the ranks' clocks differ).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evoaug.callback._meter import SearchMeter
from evoaug.callback._rest import SearchRest
from evoaug.callback._schedule import Schedule
from evoaug.callback._settings import CallbackConfig

__all__ = ["Pace"]


class Pace:
    """The search's pace over a fit: its schedule, meter and rest.

    Args:
        config: The callback's settings (budget, floor, patience, fixed schedule).
        log: Where the log lines go (rank 0's).

    Attributes:
        schedule: The plan made at the fit's start (``None`` before it).
        meter: The measured cost of the epochs and generations.
        rest: Generations in a row that changed nothing, and the rest they started.

    Example:
        >>> from evoaug import EvoAugCallback
        >>> pace = Pace(EvoAugCallback(seed=0).config, log=print)
        >>> pace.due(epoch=0, first=0, ran=0, max_epochs=10)  # no schedule yet
        0
        >>> pace.record(epoch=0, changed=False), pace.rest.idle
        (None, 1)
    """

    def __init__(self, config: CallbackConfig, *, log: Callable[[str], Any]) -> None:
        self.config = config
        self.log = log
        self.schedule: Schedule | None = None
        self.meter = SearchMeter()
        # A fixed schedule never rests (the budget does not govern it).
        self.rest = SearchRest(config.patience if config.every_n_epochs is None else None)
        self._measured_logged = False  # the first measured decision is logged

    def due(self, *, epoch: int, first: int, ran: int, max_epochs: int) -> int:
        """More generations the budget pays for at ``epoch``'s end, measured.

        Args:
            epoch: The epoch that just ended.
            first: The generation count at this epoch's end.
            ran: How many generations have run since.
            max_epochs: The fit's epochs (0: unbounded).
        """
        if self.schedule is None:
            return 0
        budget = self.config.search_budget
        due = self.meter.due(
            self.schedule,
            epoch=epoch,
            done=first + ran,
            budget=budget,
            max_epochs=max_epochs,
            min_generations=self.config.min_generations,
            ran=ran,
        )
        if due.measured and not self._measured_logged:
            self._measured_logged = True
            total = self.schedule.total_generations
            self.log(due.describe(epoch, budget=budget, planned_total=total))
        count = due.count
        if first + ran >= self.config.min_generations:  # the floor runs whatever the rest says
            count = self.rest.allows(epoch=epoch, count=due.count)
        if count == 0 and due.count and due.measured:
            # The rest ends this epoch end's generations: what the budget paid for now leaves
            # it, instead of being caught up on (once per epoch end: the loop stops here).
            self.meter.forgo(due.count * due.generation_seconds)
        return count

    def record(self, epoch: int, *, changed: bool) -> int | None:
        """A decision at ``epoch``'s end changed the policy that trains, or not.

        Returns:
            The epoch the search now rests until, when this starts or lengthens a rest (the
            log says so); else ``None``.
        """
        until = self.rest.record(epoch=epoch, changed=changed)
        if until is not None:
            self.log(
                f"evoaug: {self.rest.idle} generations in a row changed nothing "
                f"(patience={self.rest.patience}); the search rests until the end of epoch "
                f"{until}"
            )
        return until

    def summary(self) -> str | None:
        """The log line at the fit's end (``None`` when no generation ran)."""
        if not self.meter.generation_seconds:
            return None
        summary = self.meter.summary(self.config.search_budget)
        if self.rest.resting:
            summary += (
                f" It ended resting: its last {self.rest.idle} generations changed nothing "
                f"(patience={self.rest.patience})."
            )
        return summary
