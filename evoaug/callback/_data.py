"""Drawing probe samples from the dataloaders a Trainer already has.

Map-style datasets are sampled by index with the callback's own generator (reproducible, and the
training iterator is not touched); iterable datasets are read from a fresh iterator. A dataset
wrapped by :class:`~evoaug.pipeline.AugmentedDataset` is unwrapped, so probes are clean images.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from evoaug._files import atomic_write_bytes
from evoaug.callback._batch import BatchLayout
from evoaug.exceptions import ConfigError, InputError
from evoaug.pipeline import AugmentedDataset

__all__ = ["Samples", "collect_samples", "write_samples"]

Samples = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def _clean_dataset(loader: DataLoader[Any]) -> Any:
    dataset = loader.dataset
    while isinstance(dataset, AugmentedDataset):
        dataset = dataset.dataset
    return dataset


def _to_unit_float(images: torch.Tensor, where: str) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    images = images.float()
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"{where} images must be in [0, 1] before augmentation, got values in [{lo:.3g}, "
            f"{hi:.3g}]. Normalize after augmentation instead: remove Normalize from the "
            "dataset's transforms and pass `normalize=(mean, std)` to EvoAugCallback"
        )
    return images


def collect_samples(
    loader: DataLoader[Any],
    *,
    n: int,
    generator: torch.Generator,
    batch_keys: Mapping[str, int | str] | None = None,
    where: str = "training",
) -> tuple[Samples, BatchLayout]:
    """Up to ``n`` samples ``(images, labels, groups or None)`` on the CPU, and the batch layout.

    Raises:
        ConfigError: The loader's dataset is empty.
        InputError: The batches cannot be read; the message names the layout found.
    """
    dataset = _clean_dataset(loader)
    collate = loader.collate_fn
    if not isinstance(dataset, IterableDataset) and hasattr(dataset, "__len__"):
        size = len(dataset)
        if size == 0:
            raise ConfigError(f"the {where} dataset is empty")
        take = torch.randperm(size, generator=generator)[: min(n, size)].tolist()
        chunks = []
        for start in range(0, len(take), 256):
            chunks.append(collate([dataset[i] for i in take[start : start + 256]]))
        layout = BatchLayout.infer(chunks[0], batch_keys)
        parts = [layout.split(chunk) for chunk in chunks]
    else:
        parts, layout_found = [], None
        count = 0
        for batch in loader:
            if layout_found is None:
                layout_found = BatchLayout.infer(batch, batch_keys)
            images, labels, groups = layout_found.split(batch)
            parts.append((images, labels, groups))
            count += images.shape[0]
            if count >= n:
                break
        if layout_found is None:
            raise ConfigError(f"the {where} dataloader yielded no batches")
        layout = layout_found
    images = torch.cat([p[0].detach().cpu() for p in parts])[:n]
    labels = torch.cat([p[1].detach().cpu() for p in parts])[:n].long()
    has_groups = parts[0][2] is not None
    groups = (
        torch.cat([p[2].detach().cpu() for p in parts if p[2] is not None])[:n].long()
        if has_groups
        else None
    )
    return (_to_unit_float(images, where), labels, groups), layout


def write_samples(
    path: Path, images: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, per_group: int = 8
) -> None:
    """Save a few clean images per group (uint8) for the report's sample grid, atomically."""
    ids = sorted(set(groups.tolist()))
    keep = torch.cat([torch.nonzero(groups == g).flatten()[:per_group] for g in ids])
    sample = {
        "images": (images[keep] * 255).round().clamp(0, 255).to(torch.uint8),
        "labels": labels[keep].clone(),
        "groups": groups[keep].clone(),
    }
    buffer = io.BytesIO()
    torch.save(sample, buffer)
    atomic_write_bytes(path, buffer.getvalue())
