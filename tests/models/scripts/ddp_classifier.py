"""Fit and test a Classifier under 2-process CPU DDP (gloo); rank zero writes the predictions.

Run as ``python ddp_classifier.py OUT_DIR``; Lightning's "ddp" strategy starts the second rank.
The test set has 29 samples (odd, and not a multiple of the batch size) so the sampler pads.
"""

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from evoaug.models import Classifier


class Data(pl.LightningDataModule):
    num_classes = 3
    in_channels = 1

    def __init__(self) -> None:
        super().__init__()
        self.class_names = ["a", "b", "c"]
        self.group_names = ["g0", "g1"]
        g = torch.Generator().manual_seed(0)
        self.train = TensorDataset(torch.rand(32, 1, 8, 8, generator=g), torch.arange(32) % 3)
        n = 29
        self.test = TensorDataset(
            torch.rand(n, 1, 8, 8, generator=g),
            torch.arange(n) % 3,
            (torch.arange(n) % 5 == 0).long(),
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=8)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test, batch_size=4)


def main(out: Path) -> None:
    pl.seed_everything(0, verbose=False)
    data = Data()
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        default_root_dir=out,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    model = Classifier(model_kwargs={"width": 4}, scheduler="none", lr=0.05)
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data)
    if trainer.is_global_zero:
        expected = {"y_true": data.test.tensors[1].tolist(), "group": data.test.tensors[2].tolist()}
        (out / "expected.json").write_text(json.dumps(expected))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
