"""Fit a tiny model with EvoAugCallback under 2-process CPU DDP (gloo); write each rank's state.

Run as ``python ddp_fit.py OUT_DIR [budget]``; Lightning's "ddp" strategy starts the second rank
itself. With ``budget`` the generations follow the measured budget, and rank 1's clock is made to
say that every generation took 10^6 s: rank 0 decides for both, so both run the same ones.
"""

import json
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from evoaug import EvoAugCallback


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64, 2),
        )

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.net(x)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        pass

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.05)


def main(out: Path, budget: bool) -> None:
    pl.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(64, 1, 4, 4, generator=g), torch.arange(64) % 2)
    cb = EvoAugCallback(
        population_size=6,
        lookahead_steps=2,
        lookahead_batch_size=8,
        train_probe_size=16,
        val_probe_size=16,
        n_subpolicies=2,
        n_genes=1,
        **({"search_budget": 10.0} if budget else {"every_n_epochs": 1}),
    )
    if budget and os.environ.get("LOCAL_RANK") == "1":
        add = cb.meter.add_generation
        cb.meter.add_generation = lambda seconds: add(seconds + 1e6)  # type: ignore[method-assign]
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        callbacks=[cb],
        default_root_dir=out,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(Net(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert cb.search is not None
    result = {
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "generation": cb.generation,
        "checksum": cb.search.checksum(),
        "best": cb.best_policy.to_dict(),
        "measured_generations": len(cb.meter.generation_seconds),
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    main(Path(sys.argv[1]), budget=sys.argv[2:] == ["budget"])
