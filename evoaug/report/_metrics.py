"""Per-group metrics with fairlearn's ``MetricFrame``, and stratified bootstrap intervals.

Metrics: ``count``, ``accuracy`` and ``error_rate`` for every task; for binary tasks (two
classes, positive label 1) also ``selection_rate``, ``true_positive_rate`` and
``false_positive_rate``. A rate that is undefined for a group (the TPR of a group without
positives) is ``None``, not 0.

**Bootstrap.** Percentile intervals from ``n_bootstrap`` resamples (default 1000, 95%). Each
resample draws, within every group, as many test samples as the group has, with replacement
(stratified by group: group sizes stay those of the test set). Every metric here is a function of
a group's confusion counts, so resampling a group's samples is the same as drawing its counts from
a multinomial with the observed proportions; the counts are drawn directly (same distribution,
memory independent of the test set's size), from a seeded ``numpy.random.Generator``. Worst-group
accuracy, differences and ratios get their intervals from the same resamples. A value undefined
in some resamples uses those where it is defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from fairlearn.metrics import MetricFrame, count

__all__ = [
    "BINARY_METRICS",
    "BOOTSTRAP_SAMPLES",
    "CONFIDENCE",
    "METRICS",
    "GroupMetrics",
    "Interval",
    "draw_counts",
    "interval",
    "safe_divide",
]

BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
METRICS = ("count", "accuracy", "error_rate")
BINARY_METRICS = ("selection_rate", "true_positive_rate", "false_positive_rate")

Interval = tuple[float, float]


def _accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _error_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return 1.0 - _accuracy(y_true, y_pred)


def _selection_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_pred) == 1))


def _rate_among(y_true: np.ndarray, y_pred: np.ndarray, label: int) -> float:
    among = np.asarray(y_true) == label
    return float(np.mean(np.asarray(y_pred)[among] == 1)) if among.any() else float("nan")


def _true_positive_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _rate_among(y_true, y_pred, 1)


def _false_positive_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return _rate_among(y_true, y_pred, 0)


_FUNCTIONS = {
    "count": count,
    "accuracy": _accuracy,
    "error_rate": _error_rate,
    "selection_rate": _selection_rate,
    "true_positive_rate": _true_positive_rate,
    "false_positive_rate": _false_positive_rate,
}


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as floats, NaN where ``den`` is 0 (no warning)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def draw_counts(cells: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap counts ``[n_bootstrap, *cells.shape]``: a multinomial draw per row of ``cells``.

    Row ``g`` of ``cells`` holds group ``g``'s counts per category; each resample keeps the row's
    total and redraws the split with the observed proportions.
    """
    out = np.zeros((n_bootstrap, *cells.shape), dtype=np.int64)
    for g, row in enumerate(cells):
        total = int(row.sum())
        if total:
            out[:, g] = rng.multinomial(total, row / total, size=n_bootstrap)
    return out


def interval(values: np.ndarray, confidence: float) -> Interval | None:
    """Percentile interval of the finite ``values``; ``None`` when there are none."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def _nan_extreme(values: np.ndarray, lowest: bool) -> np.ndarray:
    """Min or max over the last axis ignoring NaN; NaN where all are NaN (no warning)."""
    fill = np.inf if lowest else -np.inf
    filled = np.where(np.isnan(values), fill, values)
    out = filled.min(axis=-1) if lowest else filled.max(axis=-1)
    return np.where(np.isinf(out), np.nan, out)


def _from_counts(cells: np.ndarray, binary: bool) -> dict[str, np.ndarray]:
    """Rate metrics from confusion counts ``[..., categories]`` (see :class:`GroupMetrics`)."""
    n = cells.sum(axis=-1)
    if not binary:
        accuracy = safe_divide(cells[..., 1], n)
        return {"accuracy": accuracy, "error_rate": 1.0 - accuracy}
    tn, fp, fn, tp = (cells[..., i] for i in range(4))
    accuracy = safe_divide(tn + tp, n)
    return {
        "accuracy": accuracy,
        "error_rate": 1.0 - accuracy,
        "selection_rate": safe_divide(fp + tp, n),
        "true_positive_rate": safe_divide(tp, tp + fn),
        "false_positive_rate": safe_divide(fp, fp + tn),
    }


def _number(value: Any, metric: str = "") -> float | None:
    number = float(value)
    if not np.isfinite(number):
        return None
    return int(number) if metric == "count" else number


class GroupMetrics:
    """Per-group metrics of one set of test predictions, computed once.

    The point estimates come from a fairlearn :class:`~fairlearn.metrics.MetricFrame`; the
    intervals from a stratified bootstrap (see the module docstring). Groups are integer ids;
    ``group_names`` names them for display.

    Args:
        y_true: True class ids, 1-D.
        y_pred: Predicted class ids, same length.
        groups: Group id of every sample, same length.
        group_names: Display name per group id; ids without one are shown as the id.
        binary: Add selection rate, TPR and FPR (positive label 1).
        n_bootstrap: Bootstrap resamples (0 disables the intervals).
        confidence: Level of the intervals, in (0, 1).
        seed: Seed of the bootstrap's ``numpy.random.Generator``.

    Raises:
        ValueError: Arrays of different lengths, or empty.

    Example:
        >>> import numpy as np
        >>> m = GroupMetrics(y_true=np.array([0, 1, 1, 0]), y_pred=np.array([0, 1, 0, 0]),
        ...                  groups=np.array([0, 0, 1, 1]), group_names={0: "a", 1: "b"})
        >>> m.by_group[1]["accuracy"], m.worst_group, m.difference["accuracy"]
        (0.5, 1, 0.5)

    """

    def __init__(
        self,
        *,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        groups: np.ndarray,
        group_names: Mapping[int, str] | None = None,
        binary: bool = False,
        n_bootstrap: int = BOOTSTRAP_SAMPLES,
        confidence: float = CONFIDENCE,
        seed: int = 0,
    ) -> None:
        y_true, y_pred, groups = (np.asarray(a, dtype=np.int64) for a in (y_true, y_pred, groups))
        if not (y_true.shape == y_pred.shape == groups.shape) or y_true.ndim != 1:
            raise ValueError("`y_true`, `y_pred` and `groups` must be 1-D arrays of equal length")
        if y_true.size == 0:
            raise ValueError("no predictions to measure")
        self.y_true, self.y_pred, self.groups = y_true, y_pred, groups
        self.binary = bool(binary)
        self.n_bootstrap, self.confidence, self.seed = int(n_bootstrap), float(confidence), seed
        self.metric_names: tuple[str, ...] = METRICS + (BINARY_METRICS if self.binary else ())
        """The metrics, in table order."""
        self.group_ids: tuple[int, ...] = tuple(int(g) for g in np.unique(groups))
        """Ids of the groups present, ascending."""
        names = dict(group_names or {})
        self.group_names: dict[int, str] = {g: str(names.get(g, g)) for g in self.group_ids}
        """Display name of each present group."""
        self.frame = MetricFrame(
            metrics={name: _FUNCTIONS[name] for name in self.metric_names},
            y_true=y_true,
            y_pred=y_pred,
            sensitive_features={"group": groups},
        )
        """The fairlearn ``MetricFrame`` behind the point estimates."""
        by_group = self.frame.by_group
        self.by_group: dict[int, dict[str, float | None]] = {
            g: {m: _number(by_group.loc[g, m], m) for m in self.metric_names}
            for g in self.group_ids
        }
        """Metric values per group id (``None`` where undefined; ``count`` is an int)."""
        self.overall: dict[str, float | None] = {
            m: _number(self.frame.overall[m], m) for m in self.metric_names
        }
        """Metric values over all test samples."""
        rates = self.metric_names[1:]
        low, high = self.frame.group_min(), self.frame.group_max()
        several = len(self.group_ids) > 1
        self.difference: dict[str, float | None] = {
            m: _number(high[m] - low[m]) if several else None for m in rates
        }
        """Largest minus smallest group value per rate (fairlearn's ``between_groups``);
        ``None`` with a single group."""
        self.ratio: dict[str, float | None] = {
            m: _number(low[m] / high[m]) if several and high[m] > 0 else None for m in rates
        }
        """Smallest over largest group value per rate; ``None`` with a single group or a 0."""
        accuracy = {g: self.by_group[g]["accuracy"] for g in self.group_ids}
        self.worst_group: int = min(self.group_ids, key=lambda g: (accuracy[g] or 0.0, g))
        """Id of the group with the lowest accuracy (the lowest id among ties)."""
        self.worst_group_accuracy: float = float(accuracy[self.worst_group] or 0.0)
        """Accuracy of :attr:`worst_group`."""
        self._bootstrap()

    # ------------------------------------------------------------------ bootstrap

    def counts(self) -> np.ndarray:
        """Confusion counts per group ``[groups, categories]`` (the bootstrap's cells).

        Categories: (wrong, right) for multi-class tasks; (TN, FP, FN, TP) for binary ones.
        """
        if self.binary:
            code = 2 * (self.y_true == 1) + (self.y_pred == 1)
            size = 4
        else:
            code, size = (self.y_true == self.y_pred).astype(np.int64), 2
        return np.stack(
            [np.bincount(code[self.groups == g], minlength=size) for g in self.group_ids]
        )

    def _bootstrap(self) -> None:
        rates = self.metric_names[1:]
        self.ci_by_group: dict[int, dict[str, Interval | None]] = {g: {} for g in self.group_ids}
        """Bootstrap interval per group and rate (``None`` when undefined or disabled)."""
        self.ci_overall: dict[str, Interval | None] = {}
        """Bootstrap interval of each rate over all samples."""
        self.ci_difference: dict[str, Interval | None] = {}
        """Bootstrap interval of each :attr:`difference`."""
        self.ci_ratio: dict[str, Interval | None] = {}
        """Bootstrap interval of each :attr:`ratio`."""
        self.ci_worst_group_accuracy: Interval | None = None
        """Bootstrap interval of the lowest group accuracy (min over groups per resample)."""
        if self.n_bootstrap <= 0:
            return
        rng = np.random.default_rng(self.seed)
        cells = draw_counts(self.counts(), self.n_bootstrap, rng)  # [B, G, categories]
        per_group = _from_counts(cells, self.binary)  # metric -> [B, G]
        overall = _from_counts(cells.sum(axis=1), self.binary)  # metric -> [B]
        several = len(self.group_ids) > 1
        for m in rates:
            for j, g in enumerate(self.group_ids):
                self.ci_by_group[g][m] = interval(per_group[m][:, j], self.confidence)
            self.ci_overall[m] = interval(overall[m], self.confidence)
            low = _nan_extreme(per_group[m], lowest=True)
            high = _nan_extreme(per_group[m], lowest=False)
            self.ci_difference[m] = interval(high - low, self.confidence) if several else None
            self.ci_ratio[m] = (
                interval(safe_divide(low, high), self.confidence) if several else None
            )
        worst = _nan_extreme(per_group["accuracy"], lowest=True)
        self.ci_worst_group_accuracy = interval(worst, self.confidence)

    # ------------------------------------------------------------------ export

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: one row per group, overall, worst group, differences, ratios."""

        def pair(ci: Interval | None) -> list[float] | None:
            return None if ci is None else [ci[0], ci[1]]

        rows = []
        for g in self.group_ids:
            row: dict[str, Any] = {"group": self.group_names[g], "group_id": g}
            for m in self.metric_names:
                row[m] = self.by_group[g][m]
                if m != "count":
                    row[f"{m}_ci"] = pair(self.ci_by_group[g].get(m))
            rows.append(row)
        rates = self.metric_names[1:]
        out: dict[str, Any] = {
            "metrics": list(self.metric_names),
            "binary": self.binary,
            "by_group": rows,
            "overall": dict(self.overall),
            "overall_ci": {m: pair(self.ci_overall.get(m)) for m in rates},
            "worst_group": {
                "group": self.group_names[self.worst_group],
                "group_id": self.worst_group,
                "accuracy": self.worst_group_accuracy,
                "accuracy_ci": pair(self.ci_worst_group_accuracy),
            },
            "difference": dict(self.difference),
            "difference_ci": {m: pair(self.ci_difference.get(m)) for m in rates},
            "ratio": dict(self.ratio),
            "ratio_ci": {m: pair(self.ci_ratio.get(m)) for m in rates},
        }
        if self.binary:
            out.update(self.binary_fairness())
        return out

    def binary_fairness(self) -> dict[str, float | None]:
        """Demographic-parity and equalized-odds differences (binary tasks; else empty).

        As fairlearn defines them: the selection-rate difference, and the larger of the TPR and
        FPR differences between groups.
        """
        if not self.binary:
            return {}
        tpr, fpr = self.difference["true_positive_rate"], self.difference["false_positive_rate"]
        defined = [v for v in (tpr, fpr) if v is not None]
        return {
            "demographic_parity_difference": self.difference["selection_rate"],
            "equalized_odds_difference": max(defined) if defined else None,
        }
