"""clean_accuracy: the live model's accuracy on clean training images, left untouched."""

import pytest
import torch
from torch import nn

from evoaug.evaluate import Probe, clean_accuracy


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


def test_a_model_that_classifies_every_image_fits_them_all() -> None:
    assert clean_accuracy(Threshold(), probe()) == 1.0


def test_the_fit_is_the_fraction_classified_correctly() -> None:
    data = probe()
    flipped = Probe(data.images, torch.where(torch.arange(200) < 50, 1 - data.labels, data.labels))
    assert clean_accuracy(Threshold(), flipped) == pytest.approx(0.75)


def test_images_are_normalized_as_in_training() -> None:
    data = probe()
    assert clean_accuracy(Threshold(), data, normalize=lambda x: x * 0 + 1) == pytest.approx(
        float(data.labels.float().mean())
    )  # every image scored as class 1


def test_the_model_is_left_as_it_was() -> None:
    model = Threshold().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clean_accuracy(model, probe())
    assert model.training and model.norm.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
