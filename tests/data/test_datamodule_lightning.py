"""A tiny real Trainer consumes a datamodule's batches, groups included."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from evoaug.data import ColoredDigitsDataModule


class _Tiny(pl.LightningModule):
    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
        self.seen_groups: list[int] = []

    def training_step(self, batch, batch_idx):
        images, labels, groups = batch
        self.seen_groups += groups.tolist()
        return nn.functional.cross_entropy(self.net(images), labels)

    def validation_step(self, batch, batch_idx):
        images, labels, _ = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(images), labels))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_fits_and_tests_on_colored_digits(tmp_path):
    dm = ColoredDigitsDataModule(image_size=8, batch_size=32, minority_fraction=0.2)
    model = _Tiny(dm.channels, dm.num_classes)
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=4,
        limit_val_batches=2,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=dm)
    assert len(model.seen_groups) == 128 and 1 in model.seen_groups
    assert "val_loss" in trainer.callback_metrics
