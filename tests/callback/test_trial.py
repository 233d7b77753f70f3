"""The regularizer's trial: the fit it is adopted on, its one verdict, the verdict's test."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from evoaug import Policy
from evoaug.callback._compose import policy_key
from evoaug.callback._trial import (
    Fit,
    Trial,
    adopt,
    judge,
    measure_fit,
    more_losses_than_chance,
)
from evoaug.evaluate import Probe

REGULARIZED = Policy.preset("trivialaugment")
IDENTITY = Policy.preset("identity")


def correct(hits: int, n: int = 200) -> torch.Tensor:
    return torch.arange(n) < hits


def trial(hits: int = 120) -> Trial:
    return Trial(policy_key(REGULARIZED), IDENTITY, correct(hits), since=27, until=51)


def run(state: Trial, fit: Fit, epoch: int) -> tuple[Trial | None, object]:
    return judge(
        state, fit, REGULARIZED, epoch=epoch, max_epochs=60, regularize_at=0.99, confidence=0.9
    )


@pytest.mark.parametrize(("lost", "gained"), [(0, 0), (3, 0), (5, 5), (2, 9), (12, 1)])
def test_the_verdicts_p_value_is_the_binomial_tail_of_the_changed_images(
    lost: int, gained: int
) -> None:
    n = lost + gained
    expected = sum(math.comb(n, k) for k in range(lost, n + 1)) / 2**n
    assert more_losses_than_chance(lost, gained) == pytest.approx(expected)
    assert more_losses_than_chance(0, gained) == 1.0  # no loss is never evidence of harm
    if n:  # one more loss can only make harm likelier
        assert more_losses_than_chance(lost + 1, gained) < more_losses_than_chance(lost, gained)


def test_a_waiting_trial_is_returned_unchanged_and_a_kept_one_is_judged() -> None:
    dip = Fit(correct(150), correct(90))  # the training probe not fitted again
    waiting = trial()
    state, verdict = run(waiting, dip, 40)
    assert verdict is None and state is waiting
    state, verdict = run(trial(), Fit(correct(200), correct(130)), 46)  # refitted, better
    assert state is not None and state.judged and verdict is not None
    assert not verdict.changed and verdict.chosen == REGULARIZED


def test_a_dropped_trial_returns_no_trial_and_the_policy_before_it() -> None:
    state, verdict = run(trial(), Fit(correct(150), correct(100)), 51)  # 20 lost, 0 gained
    assert state is None and verdict is not None
    assert verdict.changed and verdict.chosen == IDENTITY and verdict.challenger == IDENTITY
    assert "(20 images lost, 0 gained, p=0.000): back to identity" in verdict.reason


def test_another_probe_starts_the_trial_again() -> None:
    state, verdict = run(trial(), Fit(correct(300, n=300), correct(90, n=100)), 40)
    assert verdict is None and state is not None
    assert (state.since, state.until, state.judged) == (40, 55, False)
    assert torch.equal(state.correct, correct(90, n=100))  # the new probe's, at this epoch


def test_adopting_starts_a_trial_on_the_validation_probe_of_the_fit() -> None:
    fit = Fit(correct(200), correct(150))
    state, decision = adopt(IDENTITY, REGULARIZED, fit, {}, 27, 60)
    assert (state.key, state.fallback, state.since, state.until) == (
        policy_key(REGULARIZED),
        IDENTITY,
        27,
        51,
    )
    assert state.correct is fit.val and not state.judged
    assert decision.changed and decision.chosen == REGULARIZED
    assert decision.reason.startswith(
        "the model fits 100.0% of its clean training probe and 75.0% of its validation probe: "
        "trivialaugment is adopted as a regularizer"
    )


class Threshold(pl.LightningModule):
    """Class 1 where the image's mean is above 0.5; counts its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        score = images.flatten(1).mean(dim=1) - 0.5
        return torch.stack([-score, score], dim=1)


def probes(train_hits: int, val_hits: int = 128, n: int = 256) -> Any:
    images = torch.zeros(n, 1, 2, 2)
    images[: n // 2] = 1.0  # class 1 for the first half
    labels = (torch.arange(n) < n // 2).long()

    def flipped(hits: int, size: int) -> torch.Tensor:
        wrong = labels[:size].clone()
        wrong[: size - hits] = 1 - wrong[: size - hits]
        return wrong

    val = Probe(images[:128], flipped(val_hits, 128))
    return SimpleNamespace(train=Probe(images, flipped(train_hits, n)), val=val)


def test_measure_fit_stops_once_the_model_is_not_left_behind_unless_whole() -> None:
    model = Threshold().train()
    settings: dict[str, Any] = {"regularize_at": 0.99, "regularize_gap": 0.05}
    assert measure_fit(model, probes(128), whole=False, **settings) is None
    assert model.calls == 1 and model.training  # one chunk of 64 images; the mode restored
    whole = measure_fit(model, probes(128), whole=True, **settings)
    assert whole is not None and whole.train_accuracy == 0.5 and whole.val_accuracy == 1.0
    model.calls = 0
    assert measure_fit(model, probes(256), whole=False, **settings) is None
    assert model.calls == 1 + 2  # fitted, but validation too good to lag: not the rest
    lagging = measure_fit(model, probes(256, val_hits=96), whole=False, **settings)
    assert lagging is not None and (lagging.train_accuracy, lagging.val_accuracy) == (1.0, 0.75)
