"""The regularizer's trial: what was adopted on the fit's evidence, and its one verdict.

Once the model fits its clean training images and not its validation images, the callback's
decision (:mod:`evoaug.callback._decide`) adopts the ``regularizer`` without a look-ahead (a
short one sees only its cost) and puts it on trial: :class:`Trial` remembers which
validation-probe images the live model got right at the adoption, and :func:`judge` compares
them with the same images later, paired (McNemar's exact test, :func:`more_losses_than_chance`).
:class:`Fit` is what the live model gets right of both clean probes, the evidence for both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from evoaug.callback._compose import policy_key
from evoaug.callback._lightning import detached_trainer
from evoaug.callback._probes import ProbeSet
from evoaug.evaluate import clean_correct, clean_correct_if_left_behind
from evoaug.exceptions import ConfigError
from evoaug.policy import Policy
from evoaug.search import Advantage, Decision

__all__ = [
    "FOREVER",
    "WAIT",
    "Fit",
    "Trial",
    "adopt",
    "judge",
    "measure_fit",
    "more_losses_than_chance",
    "verdict_epoch",
]


FOREVER = 1_000_000
"""Generations a regularizer that made validation worse sits out: the rest of the fit."""


WAIT = 3
"""Epochs a regularizer's trial waits at least before its verdict when the model does not
fit its clean training probe again."""


@dataclass(frozen=True)
class Trial:
    """A regularizer adopted on the fit's evidence, on trial for the rest of the fit.

    Attributes:
        key: The adopted policy's genes as text.
        fallback: The policy trained before it.
        correct: Which validation-probe images the live model got right at the adoption.
        since: The epoch at whose end it was adopted.
        until: The epoch from which the verdict comes even if the model does not fit its
            clean training probe again.
        judged: The verdict kept it: it trains for the rest of the fit.
    """

    key: str
    fallback: Policy
    correct: torch.Tensor
    since: int = 0
    until: int = 0
    judged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return {
            "key": self.key,
            "fallback": self.fallback.to_dict(),
            "correct": [int(c) for c in self.correct.tolist()],
            "since": self.since,
            "until": self.until,
            "judged": self.judged,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Trial:
        """Rebuild :meth:`to_dict`'s output.

        Raises:
            ConfigError: A key is missing or a value has the wrong type.
        """
        try:
            return cls(
                key=str(state["key"]),
                fallback=Policy.from_dict(state["fallback"]),
                correct=torch.tensor([bool(c) for c in state["correct"]], dtype=torch.bool),
                since=int(state.get("since", 0)),
                until=int(state.get("until", 0)),
                judged=bool(state.get("judged", False)),
            )
        except (KeyError, TypeError) as err:
            raise ConfigError(
                f"checkpoint's evoaug trial state must have 'key', 'fallback' and 'correct', "
                f"got {sorted(map(str, state))} ({err})"
            ) from None


@dataclass(frozen=True)
class Fit:
    """Which clean probe images the live model gets right, and the accuracies they give.

    Attributes:
        train: Booleans, one per training-probe image.
        val: Booleans, one per validation-probe image.
    """

    train: torch.Tensor
    val: torch.Tensor

    @property
    def train_accuracy(self) -> float:
        """The fraction of the training probe classified correctly."""
        return float(self.train.double().mean())

    @property
    def val_accuracy(self) -> float:
        """The fraction of the validation probe classified correctly."""
        return float(self.val.double().mean())


def verdict_epoch(epoch: int, max_epochs: int) -> int:
    """The epoch from which a trial that starts after ``epoch`` may be judged.

    Three quarters of the epochs left, at least :data:`WAIT`: a regularizer's gain shows over
    the epochs it trains, and the last quarter leaves the policy before it time to recover.
    """
    return epoch + max(WAIT, 3 * (max_epochs - epoch) // 4)


def more_losses_than_chance(lost: int, gained: int) -> float:
    """One-sided exact p-value of ``lost`` or more losses among the changed images.

    Under no change, each image that changed is as likely lost as gained.

    Example:
        >>> more_losses_than_chance(3, 0)  # three of three lost: 1/8
        0.125
    """
    n = lost + gained
    return float(sum(math.comb(n, k) for k in range(lost, n + 1)) / 2**n)


def judge(
    trial: Trial,
    fit: Fit,
    incumbent: Policy,
    *,
    epoch: int,
    max_epochs: int,
    regularize_at: float,
    confidence: float,
) -> tuple[Trial | None, Decision | None]:
    """The trial's one verdict: the regularizer stays, or the run goes back without it.

    The live model's validation-probe images now against the same images at the adoption,
    paired (McNemar's exact test): when the images it lost outnumber the ones it gained
    beyond chance at ``confidence``, the run goes back to the policy it had before;
    otherwise the regularizer trains for the rest of the fit. Right after the adoption the
    clean images are fitted less and validation dips while the model learns the harder ones
    (the cost the look-ahead sees), and it lasts: on ``cifar10-small`` validation stayed
    below the adoption's for 20 epochs and passed it once the model fitted its clean
    training probe again. So the verdict waits for that (training-probe accuracy
    ``regularize_at`` or more), at an epoch after the adoption's, or until three quarters of
    the epochs left at the adoption (at least :data:`WAIT`) have passed: the last quarter
    leaves the policy before it time to recover.

    Args:
        trial: The trial, not yet judged.
        fit: What the live model gets right of the clean probes now.
        incumbent: The policy training uses now (the regularizer added).
        epoch: The epoch that just ended.
        max_epochs: The fit's epochs (0: unknown).
        regularize_at: The training-probe accuracy from which the model fits its images.
        confidence: The verdict's confidence.

    Returns:
        The trial from now on (``None``: dropped, the run goes back; the regularizer must
        then sit out the rest of the fit) and the verdict (``None`` while the trial waits).
    """
    correct = fit.val
    if trial.correct.shape != correct.shape:  # another probe (a resumed run): start again
        return Trial(
            trial.key, trial.fallback, correct, epoch, verdict_epoch(epoch, max_epochs)
        ), None
    refitted = fit.train_accuracy >= regularize_at and epoch > trial.since
    if not refitted and epoch < trial.until:
        return trial, None
    lost = int((trial.correct & ~correct).sum())
    gained = int((~trial.correct & correct).sum())
    p = more_losses_than_chance(lost, gained)
    before, now = float(trial.correct.double().mean()), fit.val_accuracy
    if p >= 1 - confidence:
        reason = (
            f"{incumbent.name} stays as a regularizer: the validation probe's accuracy is "
            f"{now:.1%}, {before:.1%} at its adoption ({lost} images lost, {gained} gained, "
            f"p={p:.3f})"
        )
        return dataclasses.replace(trial, judged=True), Decision(
            incumbent, incumbent, None, False, reason
        )
    reason = (
        f"the validation probe's accuracy fell from {before:.1%} to {now:.1%} since "
        f"{incumbent.name} was adopted as a regularizer ({lost} images lost, {gained} "
        f"gained, p={p:.3f}): back to {trial.fallback.name}"
    )
    return None, Decision(incumbent, trial.fallback, trial.fallback, True, reason)


def measure_fit(
    module: Any,
    probes: ProbeSet,
    *,
    regularize_at: float,
    regularize_gap: float,
    whole: bool,
    normalize: Any = None,
) -> Fit | None:
    """What the live model gets right of the clean training and validation probes.

    Args:
        module: The live LightningModule (left exactly as it was).
        probes: The fit's probes.
        regularize_at: The training-probe accuracy from which the model fits its images.
        regularize_gap: How far the validation probe must lag behind the training probe for
            the regularizer's adoption.
        whole: Score both probes whole (a trial awaits its verdict); else stop as soon as the
            passes show that the model is not in the regime where the regularizer is adopted
            (:func:`evoaug.evaluate.clean_correct_if_left_behind`).
        normalize: Applied to the images before the model, as in training.

    Returns:
        The fit, or ``None`` when ``whole`` is false and the model does not fit
        ``regularize_at`` of its training probe with its validation probe ``regularize_gap``
        or more behind (nothing reads the fit then: the rest of the passes is saved).
    """
    with detached_trainer(module):
        if whole:
            train = clean_correct(module, probes.train, normalize=normalize)
            return Fit(train, clean_correct(module, probes.val, normalize=normalize))
        both = clean_correct_if_left_behind(
            module,
            probes.train,
            probes.val,
            accuracy=regularize_at,
            gap=regularize_gap,
            normalize=normalize,
        )
        return None if both is None else Fit(*both)


def adopt(
    incumbent: Policy,
    regularizer: Policy,
    fit: Fit,
    proposals: dict[str, dict[str, Advantage]],
    epoch: int,
    max_epochs: int,
) -> tuple[Trial, Decision]:
    """The regularizer adopted on the fit's evidence at ``epoch``'s end, and its trial."""
    reason = (
        f"the model fits {fit.train_accuracy:.1%} of its clean training probe and "
        f"{fit.val_accuracy:.1%} of its validation probe: {regularizer.name} is adopted "
        "as a regularizer (a look-ahead cannot see its gain over the epochs left)"
    )
    trial = Trial(
        policy_key(regularizer), incumbent, fit.val, epoch, verdict_epoch(epoch, max_epochs)
    )
    return trial, Decision(incumbent, regularizer, regularizer, True, reason, proposals)
