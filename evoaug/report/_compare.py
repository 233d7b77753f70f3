"""A run against a baseline: changes in accuracy, worst-group accuracy and the group gap.

When both runs predicted the same test set in the same order (equal ``y_true`` and groups), the
bootstrap is **paired**: each resample draws the same test samples for both runs, so the
interval of a change reflects only how the two models differ on them. Per group, a sample falls
in one of four cells (wrong/right in the run x wrong/right in the baseline); the cells' counts
are drawn from a multinomial, as in :mod:`evoaug.report._metrics`. Otherwise the two runs are
resampled independently and the change's interval is that of the difference of the draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evoaug.report._metrics import GroupMetrics, Interval, draw_counts, interval, safe_divide

__all__ = ["Change", "Comparison"]


@dataclass(frozen=True)
class Change:
    """A quantity in the baseline (``before``) and the run (``after``), and the change.

    ``ci`` is the bootstrap interval of ``after - before`` (``None`` without resamples).
    """

    before: float
    after: float
    ci: Interval | None

    @property
    def change(self) -> float:
        """``after - before``."""
        return self.after - self.before

    @property
    def significant(self) -> bool:
        """Whether the interval of the change excludes 0."""
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "baseline": self.before,
            "run": self.after,
            "change": self.change,
            "change_ci": None if self.ci is None else [self.ci[0], self.ci[1]],
        }


def _summaries(per_group_accuracy: np.ndarray, sizes: np.ndarray) -> dict[str, np.ndarray]:
    """Overall accuracy, worst-group accuracy and accuracy gap from ``[..., G]`` accuracies."""
    overall = (per_group_accuracy * sizes).sum(axis=-1) / sizes.sum()
    return {
        "overall_accuracy": overall,
        "worst_group_accuracy": per_group_accuracy.min(axis=-1),
        "accuracy_difference": per_group_accuracy.max(axis=-1) - per_group_accuracy.min(axis=-1),
    }


class Comparison:
    """How a run differs from a baseline on the test set, computed once.

    Args:
        run: The run's metrics.
        baseline: The baseline's metrics.
        n_bootstrap: Resamples for the intervals of the changes (0: none).
        confidence: Level of the intervals.
        seed: Seed of the bootstrap generator.

    Example:
        >>> import numpy as np
        >>> y, g = np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1])
        >>> base = GroupMetrics(y_true=y, y_pred=np.array([0, 1, 1, 0]), groups=g)
        >>> run = GroupMetrics(y_true=y, y_pred=y, groups=g)
        >>> c = Comparison(run=run, baseline=base)
        >>> c.paired, c.worst_group_accuracy.before, c.worst_group_accuracy.after
        (True, 0.0, 1.0)

    """

    def __init__(
        self,
        *,
        run: GroupMetrics,
        baseline: GroupMetrics,
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> None:
        self.confidence = float(confidence)
        """Level of the intervals."""
        self.paired: bool = bool(
            run.y_true.shape == baseline.y_true.shape
            and np.array_equal(run.y_true, baseline.y_true)
            and np.array_equal(run.groups, baseline.groups)
        )
        """Whether both runs predicted the same samples in the same order (paired bootstrap)."""
        names_run = {run.group_names[g] for g in run.group_ids}
        names_base = {baseline.group_names[g] for g in baseline.group_ids}
        self.same_groups: bool = names_run == names_base
        """Whether both runs have the same group names."""
        points = {
            "overall_accuracy": (
                baseline.overall["accuracy"] or 0.0,
                run.overall["accuracy"] or 0.0,
            ),
            "worst_group_accuracy": (baseline.worst_group_accuracy, run.worst_group_accuracy),
            "accuracy_difference": (
                baseline.difference["accuracy"] or 0.0,
                run.difference["accuracy"] or 0.0,
            ),
        }
        draws = self._draws(run, baseline, n_bootstrap, np.random.default_rng(seed))
        changes = {
            key: Change(
                before=float(before),
                after=float(after),
                ci=None if draws is None else interval(draws[key], confidence),
            )
            for key, (before, after) in points.items()
        }
        self.overall_accuracy: Change = changes["overall_accuracy"]
        """Overall accuracy, baseline to run."""
        self.worst_group_accuracy: Change = changes["worst_group_accuracy"]
        """Each run's lowest group accuracy (its own worst group), baseline to run."""
        self.accuracy_difference: Change = changes["accuracy_difference"]
        """The gap between the best and the worst group's accuracy, baseline to run."""
        base_by_name = {baseline.group_names[g]: g for g in baseline.group_ids}
        self.by_group: dict[str, tuple[float | None, float | None]] = {
            run.group_names[g]: (
                baseline.by_group[base_by_name[run.group_names[g]]]["accuracy"],
                run.by_group[g]["accuracy"],
            )
            for g in run.group_ids
            if run.group_names[g] in base_by_name
        }
        """Accuracy ``(baseline, run)`` per group name present in both."""

    def _draws(
        self,
        run: GroupMetrics,
        baseline: GroupMetrics,
        n_bootstrap: int,
        rng: np.random.Generator,
    ) -> dict[str, np.ndarray] | None:
        """Bootstrap draws of ``run - baseline`` for each summary quantity."""
        if n_bootstrap <= 0:
            return None
        if self.paired:
            code = 2 * (run.y_true == run.y_pred) + (baseline.y_true == baseline.y_pred)
            cells = np.stack(
                [np.bincount(code[run.groups == g], minlength=4) for g in run.group_ids]
            )
            sizes = cells.sum(axis=1)
            drawn = draw_counts(cells, n_bootstrap, rng)  # [B, G, 4]
            after = _summaries(safe_divide(drawn[..., 2] + drawn[..., 3], sizes), sizes)
            before = _summaries(safe_divide(drawn[..., 1] + drawn[..., 3], sizes), sizes)
        else:
            after = _independent(run, n_bootstrap, rng)
            before = _independent(baseline, n_bootstrap, rng)
        return {key: after[key] - before[key] for key in after}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "paired": self.paired,
            "same_groups": self.same_groups,
            "overall_accuracy": self.overall_accuracy.to_dict(),
            "worst_group_accuracy": self.worst_group_accuracy.to_dict(),
            "accuracy_difference": self.accuracy_difference.to_dict(),
            "accuracy_by_group": [
                {"group": name, "baseline": before, "run": after}
                for name, (before, after) in self.by_group.items()
            ],
        }


def _independent(
    metrics: GroupMetrics, n_bootstrap: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    correct = (metrics.y_true == metrics.y_pred).astype(np.int64)
    cells = np.stack(
        [np.bincount(correct[metrics.groups == g], minlength=2) for g in metrics.group_ids]
    )
    sizes = cells.sum(axis=1)
    drawn = draw_counts(cells, n_bootstrap, rng)
    return _summaries(safe_divide(drawn[..., 1], sizes), sizes)
