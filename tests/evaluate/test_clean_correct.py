"""clean_correct and its early-stopping forms: which clean probe images the model gets right."""

import pytest
import torch
from torch import nn

from evoaug import ConfigError
from evoaug.evaluate import (
    Probe,
    clean_correct,
    clean_correct_if_fitted,
    clean_correct_if_left_behind,
)
from evoaug.evaluate._accuracy import _max_errors


class Threshold(nn.Module):
    """Class 1 when the mean pixel is above 0.5; a BatchNorm that must not move."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.norm(x.mean(dim=(1, 2, 3)).unsqueeze(1))  # statistics move in training mode only
        score = x.mean(dim=(1, 2, 3)) - 0.5
        return torch.stack([-score, score], dim=1)


def probe(n: int = 200) -> Probe:
    images = torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    return Probe(images, (images.mean(dim=(1, 2, 3)) > 0.5).long())


def test_a_model_that_classifies_every_image_gets_them_all() -> None:
    correct = clean_correct(Threshold(), probe())
    assert correct.dtype == torch.bool and correct.shape == (200,) and bool(correct.all())


def test_each_image_is_marked_right_or_wrong() -> None:
    data = probe()
    wrong = torch.arange(200) < 50
    flipped = Probe(data.images, torch.where(wrong, 1 - data.labels, data.labels))
    assert torch.equal(clean_correct(Threshold(), flipped), ~wrong)


def test_images_are_normalized_as_in_training() -> None:
    data = probe()
    correct = clean_correct(Threshold(), data, normalize=lambda x: x * 0 + 1)
    assert torch.equal(correct, data.labels == 1)  # every image scored as class 1


def test_the_model_is_left_as_it_was() -> None:
    model = Threshold().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clean_correct(model, probe())
    assert model.training and model.norm.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


class Counting(Threshold):
    """Threshold, counting its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return super().forward(x)


def with_wrong(wrong: torch.Tensor) -> Probe:
    data = probe(len(wrong))
    return Probe(data.images, torch.where(wrong, 1 - data.labels, data.labels))


@pytest.mark.parametrize(
    ("errors", "accuracy", "fitted"),
    [(0, 0.99, True), (2, 0.99, True), (3, 0.99, False), (1, 0.995, True), (2, 0.995, False),
     (50, 0.75, True), (51, 0.75, False), (0, 1.0, True), (1, 1.0, False), (200, 0.0, True)],
)  # fmt: skip
def test_if_fitted_agrees_with_the_full_pass_at_the_threshold(
    errors: int, accuracy: float, fitted: bool
) -> None:
    data = with_wrong(torch.arange(200) >= 200 - errors)  # the errors in the last chunk
    full = clean_correct(Threshold(), data)
    assert (float(full.double().mean()) >= accuracy) is fitted
    capped = clean_correct_if_fitted(Threshold(), data, accuracy=accuracy)
    assert (capped is not None) is fitted
    if capped is not None:
        assert torch.equal(capped, full)


def test_if_fitted_stops_at_the_first_chunk_the_model_cannot_fit() -> None:
    wrong = torch.zeros(200, dtype=torch.bool)
    wrong[:10] = True  # ten errors in the first chunk of 64
    model = Counting()
    assert clean_correct_if_fitted(model, with_wrong(wrong), accuracy=0.99) is None
    assert model.calls == 1  # of four chunks
    clean_correct_if_fitted(model, with_wrong(torch.zeros(200, dtype=torch.bool)), accuracy=0.99)
    assert model.calls == 1 + 4
    assert model.training  # modes restored after an early stop too


def test_the_error_cap_is_the_accuracys_own_comparison() -> None:
    for n in (1, 7, 64, 200, 512, 513):
        for accuracy in (0.0, 0.5, 0.9, 0.99, 0.995, 1.0, 1.01):
            brute = max((w for w in range(n + 1) if (n - w) / n >= accuracy), default=-1)
            assert _max_errors(n, accuracy) == brute, (n, accuracy)


@pytest.mark.parametrize("accuracy", [1.5, -0.1, float("nan"), "0.9"])
def test_if_fitted_refuses_an_accuracy_outside_zero_to_one(accuracy: object) -> None:
    with pytest.raises(ConfigError, match="`accuracy` must be"):
        clean_correct_if_fitted(Threshold(), probe(), accuracy=accuracy)  # type: ignore[arg-type]


def left_behind_by_brute_force(
    train: Probe, val: Probe, accuracy: float, gap: float
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Both full passes, then the regime's test as the callback reads it."""
    full_train, full_val = clean_correct(Threshold(), train), clean_correct(Threshold(), val)
    t, v = float(full_train.double().mean()), float(full_val.double().mean())
    return (full_train, full_val) if t >= accuracy > v and t - v >= gap else None


@pytest.mark.parametrize("train_errors", [0, 2, 3, 40])
@pytest.mark.parametrize("val_errors", [0, 9, 10, 11, 60, 200])
@pytest.mark.parametrize("where", ["first chunk", "last chunk"])
def test_if_left_behind_agrees_with_both_full_passes(
    train_errors: int, val_errors: int, where: str
) -> None:
    def wrong(errors: int) -> torch.Tensor:
        index = torch.arange(200)
        return index < errors if where == "first chunk" else index >= 200 - errors

    train, val = with_wrong(wrong(train_errors)), with_wrong(wrong(val_errors))
    for accuracy, gap in ((0.99, 0.05), (0.99, 0.0), (0.95, 0.1), (1.0, 0.05)):
        expected = left_behind_by_brute_force(train, val, accuracy, gap)
        got = clean_correct_if_left_behind(Threshold(), train, val, accuracy=accuracy, gap=gap)
        assert (got is None) is (expected is None), (accuracy, gap)
        if got is not None and expected is not None:
            assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


def test_if_left_behind_stops_as_soon_as_the_answer_is_known() -> None:
    fitted, none_wrong = torch.zeros(200, dtype=torch.bool), torch.zeros(200, dtype=torch.bool)
    lagging = torch.arange(200) < 40  # validation 80%
    far = torch.arange(200) < 30  # 30 errors in the training probe's first chunk
    model = Counting()
    assert (
        clean_correct_if_left_behind(
            model, with_wrong(far), with_wrong(lagging), accuracy=0.99, gap=0.05
        )
        is None
    )
    assert model.calls == 1  # the training probe's first chunk only
    model.calls = 0
    assert (
        clean_correct_if_left_behind(
            model, with_wrong(fitted), with_wrong(none_wrong), accuracy=0.99, gap=0.05
        )
        is None
    )
    assert model.calls == 1 + 4  # the first chunk, then the validation probe: not the rest
    model.calls = 0
    both = clean_correct_if_left_behind(
        model, with_wrong(fitted), with_wrong(lagging), accuracy=0.99, gap=0.05
    )
    assert both is not None and model.calls == 1 + 4 + 3  # left behind: every image scored
    assert model.training  # modes restored


@pytest.mark.parametrize(("name", "value"), [("accuracy", 1.5), ("gap", -0.1), ("gap", "0.05")])
def test_if_left_behind_refuses_thresholds_outside_zero_to_one(name: str, value: object) -> None:
    settings: dict[str, object] = {"accuracy": 0.99, "gap": 0.05, name: value}
    with pytest.raises(ConfigError, match=f"`{name}` must be"):
        clean_correct_if_left_behind(Threshold(), probe(), probe(), **settings)  # type: ignore[arg-type]
