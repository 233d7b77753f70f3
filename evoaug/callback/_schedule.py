"""When the search runs: generations planned from a budget, estimated before the fit.

A generation of P candidates with a k-step look-ahead costs about P·k look-ahead steps
(DESIGN.md), each the price of a training batch scaled by the look-ahead minibatch size, plus
each candidate's scoring passes (validation probe, BatchNorm recalibration, difficulty and
diversity): no-grad forward passes, priced at :data:`FORWARD_COST` of a training step per image.
A budget — the fraction of the run's training batches the search may spend — so fixes the number
of generations. They run at the ends of epochs (a policy swapped there applies from the next
epoch on), spread evenly after the warm-up, at least ``min_generations`` of them so that short
runs still search.

The estimate is the plan the log states before training. From the first epoch on, the measured
seconds of the epochs and generations decide how many run (:mod:`evoaug.callback._meter`), with
the same spreading rule (:func:`paced`) over the same epochs (``Schedule.slots``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evoaug.callback._settings import CallbackConfig
from evoaug.exceptions import ConfigError

__all__ = [
    "FORWARD_COST",
    "Schedule",
    "paced",
    "paced_by",
    "plan_for_trainer",
    "plan_schedule",
    "search_epochs",
]

# A no-grad forward pass of an image costs about a third of a training step on it (forward and
# backward are about three forwards). On 2 CPU cores a small CNN's default-layout forwards cost
# 0.36-0.43 of a step; the evaluator's channels_last passes there cost about 0.2, so this price
# is conservative on the CPU.
FORWARD_COST = 1 / 3


@dataclass(frozen=True)
class Schedule:
    """Which epoch ends run how many generations, and what that costs.

    Attributes:
        generations_at: Epoch index -> number of generations run at the end of that epoch.
        train_batches: Training batches in the whole run.
        cost_batches: Estimated search cost in training-batch equivalents (per generation,
            P·k look-ahead steps and P candidates' scoring passes, times the repeats).
        note: Why the plan differs from the budget, if it does.
        slots: The epochs whose ends may run a budgeted generation (the first two thirds of
            the epochs after the warm-up); empty for a fixed schedule (``every_n_epochs``), which
            the budget does not govern.
        per_generation: The estimated price of one generation in training batches.

    """

    generations_at: dict[int, int]
    train_batches: int
    cost_batches: int
    note: str = ""
    slots: tuple[int, ...] = ()
    per_generation: int = 0

    @property
    def total_generations(self) -> int:
        """Generations in the whole run."""
        return sum(self.generations_at.values())

    def describe(self) -> str:
        """One paragraph for the log: what the search will cost."""
        if not self.generations_at:
            return f"evoaug: no generation scheduled. {self.note}".strip()
        epochs = ", ".join(
            f"{e}" if n == 1 else f"{e} (x{n})" for e, n in sorted(self.generations_at.items())
        )
        share = self.cost_batches / max(self.train_batches, 1)
        text = (
            f"evoaug: {self.total_generations} generations at the end of epochs {epochs}; "
            f"about {self.cost_batches} training-batch equivalents, {share:.0%} of the run's "
            f"{self.train_batches} training batches."
        )
        if self.slots:
            text += " An estimate: the measured time decides from the first epoch on."
        return f"{text} {self.note}".strip()


def search_epochs(eligible: list[int]) -> list[int]:
    """The first two thirds of ``eligible``, at least its first epoch.

    A policy adopted late has no epochs left to act.
    """
    return eligible[: max(1, math.ceil(2 * len(eligible) / 3))]


def paced(total: int, slots: int) -> list[int]:
    """Generations per slot so that ``total`` of them are spread evenly over ``slots``.

    By the end of slot ``i`` the running count is ``total * (i + 1) / slots`` rounded half
    down, so the same rule, applied again at every slot to a total that measurements revise,
    neither runs a generation early nor postpones it (see :mod:`evoaug.callback._meter`).

    Example:
        >>> paced(4, 6), paced(1, 6), paced(7, 3)
        ([1, 0, 1, 1, 0, 1], [0, 0, 0, 1, 0, 0], [2, 3, 2])
    """
    if slots <= 0:
        return []
    return [
        paced_by(total, i, slots) - (paced_by(total, i - 1, slots) if i else 0)
        for i in range(slots)
    ]


def paced_by(total: int, i: int, slots: int) -> int:
    """Generations due by the end of slot ``i``: ceil(total·(i+1)/slots - 1/2), in integers."""
    return -((slots - 2 * total * (i + 1)) // (2 * slots))


def plan_schedule(
    *,
    max_epochs: int,
    batches_per_epoch: int,
    population_size: int,
    lookahead_steps: int,
    search_budget: float,
    lookahead_batch_fraction: float = 1.0,
    scoring_batch_fraction: float = 0.0,
    decision_batches: float = 0.0,
    repeats: int = 1,
    every_n_epochs: int | None = None,
    warmup_epochs: int = 1,
    min_generations: int = 0,
) -> Schedule:
    """Plan the generations of a run.

    Args:
        max_epochs: Epochs in the run.
        batches_per_epoch: Training batches per epoch.
        population_size: Candidates per generation (P).
        lookahead_steps: Look-ahead steps per candidate (k).
        lookahead_batch_fraction: Look-ahead minibatch size over the training batch size; a
            look-ahead step on a smaller minibatch costs that fraction of a training batch.
        scoring_batch_fraction: One candidate's scoring passes in training batches: the
            images it forwards without gradients (``Evaluator.scoring_images``) times
            :data:`FORWARD_COST`, over the training batch size.
        decision_batches: What a generation's decision costs beyond its candidates, in
            training batches (the credit per op, the evidence, the guard's look-aheads).
        repeats: Evaluations of every candidate (``Evaluator(repeats=...)``); each costs the
            same.
        search_budget: Fraction of the run's training batches the search may spend.
        every_n_epochs: If given, one generation every n epochs after the warm-up instead.
        warmup_epochs: Epochs trained before the first generation (at least 1).
        min_generations: Lower bound on generations when the budget allows fewer (0: the
            budget decides; the plan's note then says what budget would pay for one).

    Returns:
        The plan: generations spread evenly over the first two thirds of the epochs after the
        warm-up (a policy adopted late has no epochs left to act), never after the last epoch.

    Example:
        >>> plan = plan_schedule(max_epochs=10, batches_per_epoch=100, population_size=8,
        ...                      lookahead_steps=20, search_budget=0.2, min_generations=3)
        >>> plan.generations_at, plan.cost_batches
        ({1: 1, 3: 1, 5: 1}, 480)

    """
    if warmup_epochs < 1:
        raise ConfigError(f"`warmup_epochs` must be at least 1, got {warmup_epochs!r}")
    train_batches = max_epochs * batches_per_epoch
    per_candidate = lookahead_steps * lookahead_batch_fraction + scoring_batch_fraction
    per_generation = max(1, round(population_size * per_candidate * repeats + decision_batches))
    eligible = list(range(warmup_epochs - 1, max_epochs - 1))
    if not eligible:
        return Schedule(
            {},
            train_batches,
            0,
            note=f"A generation needs an epoch after it: max_epochs={max_epochs} with "
            f"warmup_epochs={warmup_epochs} leaves none.",
        )
    if every_n_epochs is not None:
        chosen = eligible[::every_n_epochs]
        plan = dict.fromkeys(chosen, 1)
        cost = per_generation * len(plan)
        return Schedule(plan, train_batches, cost, per_generation=per_generation)
    # (a hair over the quotient: 0.57 * 10000 / 20 is 284.99999... in floats, 285 exactly)
    budget_generations = math.floor(search_budget * train_batches / per_generation + 1e-9)
    total = max(min_generations, budget_generations)
    note = ""
    if total > budget_generations:
        note = (
            f"The budget ({search_budget:.0%}) pays for {budget_generations} generations; "
            f"running min_generations={min_generations}."
        )
    elif total == 0:
        needed = math.ceil(100 * per_generation / train_batches) / 100
        note = (
            f"By the estimate the budget ({search_budget:.0%}) pays for no generation: one "
            f"costs about {per_generation} training batches, "
            f"{per_generation / train_batches:.0%} of this "
            f"run's {train_batches}; search_budget={needed:g} would pay for one (or train "
            "longer, or lower population_size)."
        )
    slots = search_epochs(eligible)
    plan = {e: n for e, n in zip(slots, paced(total, len(slots)), strict=True) if n}
    return Schedule(
        plan, train_batches, per_generation * sum(plan.values()), note=note,
        slots=tuple(slots), per_generation=per_generation,
    )  # fmt: skip


def plan_for_trainer(
    trainer: Any,
    config: CallbackConfig,
    *,
    candidate_steps: int,
    scoring_images: int,
    decision_images: float = 0.0,
) -> Schedule:
    """:func:`plan_schedule` for a fit: batches from the Trainer, the rest from the settings.

    With ``search=False`` the schedule has no generation.

    Args:
        trainer: The Trainer, its training loader set up (``on_train_start``).
        config: The callback's settings.
        candidate_steps: Look-ahead steps of one candidate's scoring (k, or 0 when no
            objective reads a look-ahead).
        scoring_images: Images one candidate's scoring forwards besides its look-ahead.
        decision_images: What a generation's decision costs, in training images.

    Raises:
        ConfigError: Neither ``max_epochs`` and a sized loader nor ``every_n_epochs``.
    """
    max_epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else None
    sized = trainer.num_training_batches != float("inf")
    batches = int(trainer.num_training_batches) if sized else 0
    if max_epochs is None or batches == 0:
        if config.every_n_epochs is None:
            raise ConfigError(
                "cannot plan generations from `search_budget` without `max_epochs` and a "
                "sized training loader; set `every_n_epochs`"
            )
        max_epochs = max_epochs or 10**6
    train_batch = getattr(trainer.train_dataloader, "batch_size", None) or 1
    schedule = plan_schedule(
        max_epochs=max_epochs,
        batches_per_epoch=max(batches, 1),
        population_size=config.population_size,
        lookahead_steps=candidate_steps,
        lookahead_batch_fraction=config.lookahead_batch_size / train_batch,
        scoring_batch_fraction=scoring_images * FORWARD_COST / train_batch,
        decision_batches=decision_images / train_batch,
        repeats=config.lookahead_repeats,
        search_budget=config.search_budget,
        every_n_epochs=config.every_n_epochs,
        warmup_epochs=config.warmup_epochs,
        min_generations=config.min_generations,
    )
    if not config.search:
        return Schedule({}, schedule.train_batches, 0, note="Search disabled.")
    return schedule
