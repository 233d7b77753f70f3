"""Fit a tiny Classifier on the digits datamodule with EvoAugCallback; checkpoint every epoch.

Run as ``python fit_digits.py ROOT [--resume CKPT] [--hold-at-epoch N]``. The run directory is
``ROOT/evoaug`` (no logger), checkpoints go to ``ROOT/ckpt`` (``last.ckpt`` after every epoch),
and at the end ``ROOT/result.json`` holds the callback's final state. ``--hold-at-epoch N`` stops
at the second training batch of epoch N, writes ``ROOT/HOLDING`` and sleeps, so that a test can
kill the process with SIGKILL at a known point. Tests also import :func:`fit` to run in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from evoaug import EvoAugCallback
from evoaug.data import DigitsDataModule
from evoaug.models import Classifier

MAX_EPOCHS = 4  # generations at the ends of epochs 0, 1 and 2


class Hold(Callback):
    """Write ``marker`` and sleep at the second training batch of ``epoch`` (to be killed)."""

    def __init__(self, epoch: int, marker: Path) -> None:
        self.epoch, self.marker = epoch, marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # type: ignore[no-untyped-def]
        if trainer.current_epoch == self.epoch and batch_idx == 1:
            self.marker.write_text(str(os.getpid()))
            time.sleep(600)


def callback(**overrides: object) -> EvoAugCallback:
    """The tiny search every reliability test uses (overridable).

    ``decision="front"``: every generation's front pick trains, so that the policy changes
    often, the hardest case for resuming; the evidence rule's resume is tested in
    tests/callback/test_callback_resume.py.
    """
    kwargs: dict[str, object] = dict(
        decision="front",
        population_size=4,
        every_n_epochs=1,
        warmup_epochs=1,
        min_generations=0,
        lookahead_steps=3,
        lookahead_batch_size=16,
        train_probe_size=64,
        val_probe_size=32,
        n_subpolicies=2,
        n_genes=1,
        normalize="datamodule",
        seed=0,
    )
    kwargs.update(overrides)
    return EvoAugCallback(**kwargs)  # type: ignore[arg-type]


def fit(
    root: Path,
    *,
    max_epochs: int = MAX_EPOCHS,
    resume: Path | None = None,
    hold_at_epoch: int | None = None,
    checkpoint: bool = True,
    cb: EvoAugCallback | None = None,
) -> EvoAugCallback:
    """Fit and return the callback; ``root/evoaug`` is the run directory."""
    pl.seed_everything(0, verbose=False)
    cb = cb or callback()
    callbacks: list[Callback] = [cb]
    if checkpoint:
        callbacks.append(ModelCheckpoint(dirpath=root / "ckpt", save_last=True, every_n_epochs=1))
    if hold_at_epoch is not None:
        callbacks.append(Hold(hold_at_epoch, root / "HOLDING"))
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        default_root_dir=root,
        logger=False,
        enable_checkpointing=checkpoint,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
    model = Classifier(model="small-cnn", model_kwargs={"width": 4}, lr=0.05, scheduler="none")
    data = DigitsDataModule(batch_size=32, image_size=8, limit_train=192, limit_test=64)
    trainer.fit(model, datamodule=data, ckpt_path=resume)
    return cb


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--resume", type=Path, default=None)
    parser.add_argument("--hold-at-epoch", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cb = fit(args.root, resume=args.resume, hold_at_epoch=args.hold_at_epoch)
    assert cb.search is not None
    result = {
        "generation": cb.generation,
        "checksum": cb.search.checksum(),
        "best_policy": cb.best_policy.to_dict(),
    }
    (args.root / "result.json").write_text(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
