"""Tiny real Lightning setups for the callback tests."""

from __future__ import annotations

import os
import types

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class TinyNet(pl.LightningModule):
    """A small CNN with BatchNorm; records what it trains on."""

    def __init__(self, channels: int = 1, num_classes: int = 4, lr: float = 0.05) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(32, num_classes)
        self.lr = lr
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch[0], batch[1]
        self.seen.append(x.detach().clone())
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch[0], batch[1]
        self.log("val_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def make_data(n: int = 96, size: int = 8, channels: int = 1, groups: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = torch.rand(n, channels, size, size, generator=g) * 0.3
    # a learnable signal: brighter quadrant per class
    for c in range(4):
        r, q = divmod(c, 2)
        images[
            labels == c, :, r * size // 2 : (r + 1) * size // 2, q * size // 2 : (q + 1) * size // 2
        ] += 0.6
    images = images.clamp(0, 1)
    tensors = [images, labels]
    if groups:
        tensors.append((torch.arange(n) % 3 == 0).long())
    return TensorDataset(*tensors)


def loaders(batch_size: int = 16, **kwargs):  # type: ignore[no-untyped-def]
    train = DataLoader(
        make_data(**kwargs),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )
    val = DataLoader(make_data(seed=1, **kwargs), batch_size=32)
    return train, val


def trainer(tmp_path, callbacks, max_epochs: int = 3, **kwargs) -> pl.Trainer:  # type: ignore[no-untyped-def]
    defaults = dict(
        max_epochs=max_epochs,
        default_root_dir=tmp_path,
        logger=pl.loggers.CSVLogger(tmp_path, name="logs"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        accelerator="cpu",
        devices=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    defaults.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **defaults)


SMALL = dict(
    population_size=4,
    lookahead_steps=3,
    lookahead_batch_size=8,
    train_probe_size=32,
    val_probe_size=32,
    n_subpolicies=2,
    n_genes=1,
    min_generations=2,
    seed=0,
)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same global RNG state: TinyNet's initial weights (and
    anything else drawn from the global generator) do not depend on the tests run before."""
    torch.manual_seed(int(os.environ.get("EVOAUG_TEST_SEED", "0")))


@pytest.fixture
def lt() -> types.SimpleNamespace:
    """The helpers above, for tests (conftest modules are not importable by name)."""
    return types.SimpleNamespace(
        TinyNet=TinyNet, make_data=make_data, loaders=loaders, trainer=trainer, SMALL=dict(SMALL)
    )
