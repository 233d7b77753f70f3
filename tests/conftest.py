"""Shared test setup: environment for third-party libraries, and the tiny models and
sklearn-digits probes that the evaluator and objective tests share."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Lightning's CLI calls a jsonargparse API deprecated upstream; not ours to fix.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from evoaug.evaluate import OptimizerSpec, Probe, stratified_probe


def tiny_cnn(num_classes: int = 10) -> nn.Module:
    """Conv-BN-ReLU-Dropout twice, then a linear head (BatchNorm and dropout on purpose)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64, num_classes),
    )


@pytest.fixture(scope="session")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(data.target, dtype=torch.int64)


@pytest.fixture(scope="session")
def pretrained(digits: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
    """State of a tiny CNN trained briefly on digits, so look-ahead accuracy means something."""
    images, labels = digits
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = tiny_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(60):
        index = torch.randint(0, 1000, (64,), generator=g)
        loss = F.cross_entropy(model(images[index]), labels[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def model(pretrained: dict[str, torch.Tensor]) -> nn.Module:
    net = tiny_cnn()
    net.load_state_dict(pretrained)
    return net.train()


@pytest.fixture(scope="session")
def probes(digits: tuple[torch.Tensor, torch.Tensor]) -> tuple[Probe, Probe]:
    images, labels = digits
    g = torch.Generator().manual_seed(1)
    train = Probe(images[:256], labels[:256])
    groups = (labels[1000:] >= 5).long()  # two groups: digits 0-4 and 5-9
    val = stratified_probe(images[1000:], labels[1000:], groups, size=128, generator=g)
    return train, val


@pytest.fixture
def sgd() -> OptimizerSpec:
    return OptimizerSpec("sgd", lr=0.05, momentum=0.9)
