"""The built-in objectives accuracy, difficulty and diversity (fairness is in ``_fairness``).

Definitions follow ``DESIGN.md``; affinity and diversity as augmentation measures are from
Gontijo-Lopes et al., "Tradeoffs in Data Augmentation: An Empirical Study" (ICLR 2021). Here
"difficulty" plays the role of (negated) affinity, measured as a loss gap, and diversity is
measured in the model's feature space rather than as final training loss, so that both cost a
few forward passes.
"""

from __future__ import annotations

import numpy as np
import torch

from evoaug.exceptions import ConfigError
from evoaug.objectives._base import (
    CandidateContext,
    CandidateFailure,
    Objective,
    check_estimator,
    register_objective,
)

__all__ = ["Accuracy", "Difficulty", "Diversity"]


def _size(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"`{name}` must be an int >= {minimum}, got {value!r}")
    return value


def _mean_loss(ctx: CandidateContext, outputs: torch.Tensor, labels: torch.Tensor) -> float:
    loss = ctx.loss_fn(outputs, labels)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        got = (
            f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
        )
        raise ConfigError(f"`loss_fn` must return a scalar (mean) loss tensor, got {got}")
    return float(loss)


@register_objective("accuracy")
class Accuracy(Objective):
    """How much the policy helps the model's accuracy, by one of two estimators.

    - ``"lookahead"``: validation accuracy of θ', the weights after k look-ahead steps on the
      policy's images (an isolated copy, the caller's optimizer type and current learning rate,
      then BatchNorm recalibrated on clean images; shared with the fairness objective).
    - ``"alignment"``: the mean gain in gradient alignment with the group-balanced validation
      gradient, augmented over clean training images (``CandidateContext.alignment_gains``):
      a forward pass, no training; identity scores 0.

    Args:
        estimator: ``"lookahead"`` or ``"alignment"``.
        size: Training-probe images the alignment estimator averages over.

    Example:
        >>> Accuracy().uses_lookahead, Accuracy(estimator="alignment").uses_lookahead
        (True, False)

    """

    def __init__(self, estimator: str = "lookahead", size: int = 256) -> None:
        self.estimator = check_estimator(estimator)
        self.size = _size("alignment_size", size, 1)
        self.uses_lookahead = self.estimator == "lookahead"

    def _compute(self, ctx: CandidateContext) -> float:
        if self.estimator == "alignment":
            return float(ctx.alignment_gains(self.size)[0].mean())
        y_true, y_pred, _ = ctx.lookahead_predictions()
        return float(np.mean(y_true == y_pred))


@register_objective("difficulty")
class Difficulty(Objective):
    """How much harder the policy makes the training images for the current model.

    ``mean loss of f_θ on π(x) - mean loss of f_θ on x`` over the first ``size`` images of the
    shuffled training probe, model in eval mode. The clean loss is computed once per
    evaluation. The identity policy scores exactly 0.

    Args:
        size: Number of training-probe images (fewer if the probe is smaller).

    Example:
        >>> Difficulty(size=128).size
        128

    """

    uses_lookahead = False

    def __init__(self, size: int = 256) -> None:
        self.size = _size("difficulty_size", size, 1)

    def _compute(self, ctx: CandidateContext) -> float:
        labels = ctx.train_subset(self.size).labels
        clean = ctx.shared(
            f"difficulty.clean_loss.{len(labels)}",
            lambda: _mean_loss(ctx, ctx.clean_pass(self.size)[0], labels),
        )
        augmented, _ = ctx.clean_pass(self.size, draw=0)
        return _mean_loss(ctx, augmented, labels) - clean


@register_objective("diversity")
class Diversity(Objective):
    """How different two draws of the policy make the same image, relative to the data's spread.

    ``mean_i ||f(π(x_i)) - f(π'(x_i))|| / mean_i ||f(x_i) - f(x_s(i))||`` over the first ``size``
    images of the shuffled training probe, where π, π' are two independent draws, s a fixed
    derangement (each image paired with the next one) and ``f`` the features of the current
    model in eval mode (the input of its last ``nn.Linear`` by default, pixels as a fallback).
    The identity policy scores exactly 0; a policy whose two draws of one image are as far apart
    as two different images scores about 1.

    Args:
        size: Number of training-probe images, at least 2.

    Example:
        >>> Diversity(size=64).size
        64

    """

    uses_lookahead = False

    def __init__(self, size: int = 128) -> None:
        self.size = _size("diversity_size", size, 2)

    def _compute(self, ctx: CandidateContext) -> float:
        n = len(ctx.train_subset(self.size))
        if n < 2:
            raise CandidateFailure("diversity needs at least 2 training-probe images")

        def spread() -> float:
            _, clean = ctx.clean_pass(self.size)
            return float((clean - clean.roll(1, dims=0)).norm(dim=1).mean())

        baseline = ctx.shared(f"diversity.clean_spread.{n}", spread)
        if baseline == 0.0:
            raise CandidateFailure(
                "diversity is undefined: the clean images' features are all equal"
            )
        # Draw 0 is shared with difficulty; each draw is independent per image.
        _, first = ctx.clean_pass(self.size, draw=0)
        _, second = ctx.clean_pass(self.size, draw=1)
        return float((first - second).norm(dim=1).mean()) / baseline
