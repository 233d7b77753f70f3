"""Test predictions with groups: the fairness report's input.

:class:`evoaug.models.Classifier` writes two files into the run directory
``<trainer.log_dir or trainer.default_root_dir>/evoaug/`` at the end of ``trainer.test``
(the directory where :class:`evoaug.EvoAugCallback` writes its history when the same Trainer
fitted the model). Both are written atomically by global rank zero, after gathering every rank's
predictions.

``test_predictions.csv`` (UTF-8, header row, one row per test sample, in test-set order):

============== ==============================================================================
column         meaning
============== ==============================================================================
``index``      position of the sample in the test set, 0 .. N-1
``y_true``     true class id
``y_pred``     predicted class id (argmax of the logits)
``group``      group id used for fairness: the batch's group (sensitive attribute) when the
               batches carry one, otherwise the class (equal to ``y_true``); see
               ``groups_source``
``confidence`` softmax probability of ``y_pred``, six decimals
============== ==============================================================================

``test_meta.json`` (an object):

======================= =======================================================================
key                     meaning
======================= =======================================================================
``format_version``      1
``columns``             the CSV's columns, in order
``num_samples``         number of rows of the CSV
``num_classes``         number of classes
``class_names``         name of each class id (``str(id)`` when the datamodule has none)
``groups_source``       ``"sensitive attribute"`` or ``"classes"``
``group_names``         name of each group id of the ``group`` column (the class names when
                        ``groups_source`` is ``"classes"``)
``sensitive_attribute`` the datamodule's ``sensitive_attribute`` (e.g. ``"race"``) or null
``dataset``             the datamodule's ``describe()`` (any JSON value) or null
``model``               the registry name of the network, or the class of a network instance
``num_params``          number of parameters of the network
``test_acc``            accuracy of the rows (equals the logged ``test_acc`` on one device)
``epoch``               ``trainer.current_epoch`` when the test ran
``global_step``         ``trainer.global_step`` when the test ran
======================= =======================================================================

Under DDP, Lightning's ``DistributedSampler`` gives rank ``r`` the samples ``r, r + W, ...`` and
pads the last round with repeats; the rows are put back in that interleaved order and cut to the
test set's length, so a plain (unshuffled) test loader gives each sample exactly once. The logged
``test_acc`` counts the padded repeats (Lightning recommends testing on one device).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from evoaug._files import atomic_write_text
from evoaug._run_layout import (
    TEST_META_FILE,
    TEST_PREDICTIONS_FILE,
)
from evoaug.exceptions import EvoAugError

__all__ = [
    "COLUMNS",
    "FORMAT_VERSION",
    "PredictionTensors",
    "gather_predictions",
    "interleave_ranks",
    "write_predictions",
]

FORMAT_VERSION = 1
COLUMNS = ("index", "y_true", "y_pred", "group", "confidence")


@dataclass(frozen=True)
class PredictionTensors:
    """Test predictions as 1-D tensors of equal length (on any device)."""

    y_true: torch.Tensor
    y_pred: torch.Tensor
    group: torch.Tensor
    confidence: torch.Tensor

    @staticmethod
    def concat(parts: Sequence[PredictionTensors], device: torch.device) -> PredictionTensors:
        """One :class:`PredictionTensors` from batches (empty tensors when there are none)."""
        if not parts:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return PredictionTensors(empty, empty, empty, torch.zeros(0, device=device))
        return PredictionTensors(
            torch.cat([p.y_true for p in parts]),
            torch.cat([p.y_pred for p in parts]),
            torch.cat([p.group for p in parts]),
            torch.cat([p.confidence for p in parts]),
        )

    def __len__(self) -> int:
        return int(self.y_true.numel())


def interleave_ranks(
    gathered: torch.Tensor, sizes: Sequence[int], limit: int | None
) -> torch.Tensor:
    """Rows of ``gathered`` ``[world, max_size]`` in the order ``DistributedSampler`` dealt them.

    Rank ``r``'s ``j``-th row came from position ``j * world + r``; rows beyond each rank's size
    are padding and dropped, and the result is cut to ``limit`` rows (the test set's length) to
    drop the sampler's repeats.

    Example:
        >>> import torch
        >>> interleave_ranks(torch.tensor([[0, 2, 4], [1, 3, 0]]), [3, 2], limit=None).tolist()
        [0, 1, 2, 3, 4]

    """
    world, width = gathered.shape[0], gathered.shape[1]
    valid = torch.arange(width, device=gathered.device)[None, :] < torch.tensor(
        list(sizes), device=gathered.device
    ).reshape(world, 1)
    rows = gathered.transpose(0, 1).reshape(-1)[valid.transpose(0, 1).reshape(-1)]
    return rows if limit is None else rows[:limit]


def write_predictions(run_dir: Path, predictions: PredictionTensors, meta: dict[str, Any]) -> None:
    """Write ``test_predictions.csv`` and ``test_meta.json`` (see the module docstring).

    Args:
        run_dir: The run directory; created if missing.
        predictions: The gathered predictions, in test-set order.
        meta: Keys of ``test_meta.json`` besides those computed here (``format_version``,
            ``columns``, ``num_samples``, ``test_acc``). Values must be JSON-serializable;
            others are written as their ``str()``.

    """
    y_true = predictions.y_true.cpu().tolist()
    y_pred = predictions.y_pred.cpu().tolist()
    group = predictions.group.cpu().tolist()
    confidence = predictions.confidence.float().cpu().tolist()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, row in enumerate(zip(y_true, y_pred, group, confidence, strict=True)):
        writer.writerow([i, row[0], row[1], row[2], f"{row[3]:.6f}"])
    correct = sum(int(t == p) for t, p in zip(y_true, y_pred, strict=True))
    header = {
        "format_version": FORMAT_VERSION,
        "columns": list(COLUMNS),
        "num_samples": len(y_true),
        "test_acc": correct / len(y_true) if y_true else None,
    }
    atomic_write_text(run_dir / TEST_PREDICTIONS_FILE, buffer.getvalue())
    merged = {**header, **{key: value for key, value in meta.items() if key not in header}}
    text = json.dumps(merged, indent=2, default=str)
    atomic_write_text(run_dir / TEST_META_FILE, text + "\n")


def gather_predictions(module: pl.LightningModule, local: PredictionTensors) -> PredictionTensors:
    """Every rank's predictions in test-set order (see the module docstring); collective."""
    trainer = module.trainer
    world = trainer.world_size
    if world == 1:
        return local
    sizes = _tensor(module.all_gather(torch.tensor([len(local)], device=module.device))).flatten()
    width = int(sizes.max())
    limit = _test_set_length(trainer)

    def gather(values: torch.Tensor) -> torch.Tensor:
        padded = values.new_zeros(width)
        padded[: len(values)] = values
        gathered = _tensor(module.all_gather(padded)).reshape(world, width)
        return interleave_ranks(gathered, sizes.tolist(), limit)

    return PredictionTensors(
        gather(local.y_true), gather(local.y_pred), gather(local.group), gather(local.confidence)
    )


def _tensor(value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise EvoAugError(f"all_gather returned {type(value).__name__}, expected a tensor")
    return value


def _test_set_length(trainer: pl.Trainer) -> int | None:
    loaders = trainer.test_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
    try:
        return len(loader.dataset)  # type: ignore[union-attr]
    except (AttributeError, TypeError):
        return None
