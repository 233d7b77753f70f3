"""The fairness objective: a fairlearn metric of θ' on the validation probe's groups.

Groups are the sensitive attribute when the data has one; otherwise pass the class labels as
groups, and worst-group accuracy becomes worst-class accuracy (Balestriero, Bottou & LeCun,
"The Effects of Regularization and Data Augmentation are Class Dependent", NeurIPS 2022).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.objectives._base import (
    CandidateContext,
    CandidateFailure,
    Objective,
    ProbePredictions,
    check_estimator,
    register_objective,
)

if TYPE_CHECKING:
    from evoaug._probe import Probe

__all__ = ["BINARY_FAIRNESS_METRICS", "FAIRNESS_METRICS", "Fairness"]

FAIRNESS_METRICS: tuple[str, ...] = (
    "worst_group_accuracy",
    "worst_group_gain",
    "accuracy_difference",
    "equalized_odds_difference",
    "demographic_parity_difference",
)
BINARY_FAIRNESS_METRICS: tuple[str, ...] = (
    "equalized_odds_difference",
    "demographic_parity_difference",
)

NO_GROUPS = (
    "the fairness objective needs group ids: build the validation probe with `groups=` "
    "(a sensitive attribute, int64 [N]), or pass the class labels as groups to score "
    "worst-class accuracy, or drop 'fairness' from `objectives`"
)


def _accuracy(y_true: Any, y_pred: Any) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


@register_objective("fairness")
class Fairness(Objective):
    """A fairlearn group metric of θ' (the look-ahead weights) on the validation probe.

    Metrics, all "higher is better":

    - ``"worst_group_accuracy"`` (default): ``MetricFrame(metrics=accuracy).group_min()``.
    - ``"worst_group_gain"``: the smallest change of a group's accuracy over the look-ahead,
      ``min over groups g of acc_g(θ') - acc_g(θ)``, from the ``by_group`` accuracies of two
      frames; θ's BatchNorm statistics are recalibrated on the same clean images as θ''s, so
      the change is the look-ahead steps' alone. A policy that buys one group's accuracy with
      another's scores low even while the losing group stays the better one. Where a policy
      can do that (colored digits, where full Solarize inverts every image) it ranks policies
      as full training does far better than worst-group accuracy (Spearman 0.84-0.90 against
      0.57-0.66): a k-step look-ahead shows which group a policy moves, not where the groups
      end. On UTKFace it ranks no better (0.69 against 0.74; docs/benchmarks.md, "Proxy
      fidelity"). Searches with it have so far ended level with the default (colored digits,
      UTKFace; same page).
    - ``"accuracy_difference"``: ``-MetricFrame(metrics=accuracy).difference()``, the negated gap
      between the best and the worst group (0 is perfectly even).
    - ``"equalized_odds_difference"``, ``"demographic_parity_difference"``: the negated
      ``fairlearn.metrics`` functions of the same name, for binary labels in ``{0, 1}`` only
      (fairlearn's versions are binary-only); a prediction counts as positive when it is 1.

    With ``estimator="alignment"`` no look-ahead runs and the metric is not used: the value is
    the mean gain in gradient alignment with the validation gradient of the worst group (the
    group with the highest validation loss at θ), augmented over clean training images (see
    :class:`~evoaug.objectives.Accuracy`). The worst group's is the direction a policy must
    serve to lift the group that is left behind.

    Args:
        metric: One of :data:`FAIRNESS_METRICS`.
        estimator: ``"lookahead"`` or ``"alignment"``.
        size: Training-probe images the alignment estimator averages over.

    Raises:
        ConfigError: Unknown metric or estimator.

    Example:
        >>> Fairness().metric, Fairness(estimator="alignment").scores_together
        ('worst_group_accuracy', False)

    """

    def __init__(
        self, metric: str = "worst_group_accuracy", estimator: str = "lookahead", size: int = 256
    ) -> None:
        if metric not in FAIRNESS_METRICS:
            raise ConfigError(
                f"`fairness_metric` must be one of {FAIRNESS_METRICS}, got {metric!r}"
            )
        self.metric = metric
        self.estimator = check_estimator(estimator)
        self.size = check_int("alignment_size", size, low=1)
        self.uses_lookahead = self.scores_together = self.estimator == "lookahead"

    def _check(self, train_probe: Probe, val_probe: Probe) -> None:
        if val_probe.groups is None:
            raise ConfigError(NO_GROUPS)
        if self.metric in BINARY_FAIRNESS_METRICS:
            labels = sorted({int(v) for v in torch.unique(val_probe.labels).tolist()})
            if not set(labels) <= {0, 1}:
                raise ConfigError(
                    f"`fairness_metric={self.metric!r}` is defined for binary labels in {{0, 1}} "
                    f"only (fairlearn's version is binary-only), got labels {labels[:10]}; use "
                    "'worst_group_accuracy' or 'accuracy_difference' for multi-class tasks"
                )

    def prepare(self, ctx: CandidateContext) -> ProbePredictions:  # lookahead estimator only
        """θ' predictions on the validation probe: the candidate's look-ahead runs here.

        For ``"worst_group_gain"`` θ's predictions are computed here too (once per evaluation,
        by the first candidate), while the candidate's models are at hand.
        """
        if self.metric == "worst_group_gain":
            ctx.reference_predictions()
        predictions = ctx.lookahead_predictions()
        if predictions[2] is None:
            raise CandidateFailure(NO_GROUPS)
        return predictions

    def _compute(self, ctx: CandidateContext) -> float:
        if self.estimator == "alignment":
            return float(ctx.alignment_gains(self.size)[1].mean())
        return self._compute_many([ctx], [None])[0]

    def _compute_many(
        self, contexts: Sequence[CandidateContext], prepared: Sequence[Any]
    ) -> list[float]:
        """All candidates' metric from one ``MetricFrame``, the candidate as control feature.

        One frame over the stacked predictions costs about what one frame over a single
        candidate's costs (pandas' fixed overhead dominates at probe sizes), and its per-control
        ``group_min()`` / ``difference()`` equal the per-candidate frames' values.
        """
        from fairlearn.metrics import (
            MetricFrame,
            demographic_parity_difference,
            equalized_odds_difference,
        )

        if not contexts:
            return []
        predictions: list[ProbePredictions] = [
            ctx.lookahead_predictions() if p is None else p
            for ctx, p in zip(contexts, prepared, strict=True)
        ]
        if any(groups is None for _, _, groups in predictions):
            raise CandidateFailure(NO_GROUPS)
        if self.metric in BINARY_FAIRNESS_METRICS:
            fn = (
                equalized_odds_difference
                if self.metric == "equalized_odds_difference"
                else demographic_parity_difference
            )
            return [
                -float(fn(y_true, (y_pred == 1).astype(np.int64), sensitive_features=groups))
                for y_true, y_pred, groups in predictions
            ]
        candidate = np.repeat(np.arange(len(predictions)), [len(p[0]) for p in predictions])
        frame = MetricFrame(
            metrics=_accuracy,
            y_true=np.concatenate([p[0] for p in predictions]),
            y_pred=np.concatenate([p[1] for p in predictions]),
            sensitive_features=np.concatenate([np.asarray(p[2]) for p in predictions]),
            control_features=candidate,
        )
        if self.metric == "worst_group_gain":
            y_true, y_pred, groups = contexts[0].reference_predictions()
            reference = MetricFrame(
                metrics=_accuracy, y_true=y_true, y_pred=y_pred, sensitive_features=groups
            )
            gains = frame.by_group.sub(reference.by_group, level=1)
            values = gains.groupby(level=0).min()
        elif self.metric == "worst_group_accuracy":
            values = frame.group_min()
        else:
            values = -frame.difference()
        return [float(values.loc[i]) for i in range(len(predictions))]
