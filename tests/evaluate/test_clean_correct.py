"""clean_correct: which clean probe images the live model gets right, the model left untouched."""

import torch
from torch import nn

from evoaug.evaluate import Probe, clean_correct


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
