"""Splits held in memory: uint8 (or float) image tensors, labels, groups, and their datasets."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

__all__ = ["ImageTensorDataset", "LoadedData", "Split", "mean_std", "resize_images"]

_NORMALIZATION_CHUNK = 4096


def resize_images(images: torch.Tensor, size: int, *, chunk: int = 2048) -> torch.Tensor:
    """Resize square images ``[N, C, H, W]`` to ``size x size`` (bilinear, antialiased).

    The dtype is kept: uint8 images are rounded back to uint8.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=images.dtype)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].float()
        part = F.interpolate(
            part, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        if images.dtype == torch.uint8:
            part = part.round_().clamp_(0, 255)
        out[start : start + chunk] = part.to(images.dtype)
    return out


@dataclass(frozen=True)
class Split:
    """One split held in memory.

    Attributes:
        images: ``[N, C, H, W]``, uint8 in [0, 255] or float32 in [0, 1].
        labels: int64 ``[N]``.
        groups: int64 ``[N]`` group ids, or None for data without a sensitive attribute.
    """

    images: torch.Tensor
    labels: torch.Tensor
    groups: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, indices: torch.Tensor) -> Split:
        """The samples at ``indices``."""
        groups = None if self.groups is None else self.groups[indices]
        return Split(self.images[indices], self.labels[indices], groups)


class ImageTensorDataset(Dataset[tuple[torch.Tensor, ...]]):
    """A :class:`Split` as a map-style dataset of ``(image, label[, group])`` tuples.

    Images come out as float32 ``[C, H, W]`` in [0, 1]; labels and groups as int64 scalars.
    """

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image = self.split.images[index]
        image = image.float().div_(255.0) if image.dtype == torch.uint8 else image.float()
        if self.split.groups is None:
            return image, self.split.labels[index]
        return image, self.split.labels[index], self.split.groups[index]


@dataclass(frozen=True)
class LoadedData:
    """What a datamodule's ``_load`` returns."""

    train: Split
    val: Split
    test: Split
    class_names: list[str]
    group_names: list[str] | None = None


def mean_std(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of images in [0, 1] (uint8 scaled), computed in chunks."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    count = 0
    for start in range(0, len(images), _NORMALIZATION_CHUNK):
        part = images[start : start + _NORMALIZATION_CHUNK].to(torch.float64)
        if images.dtype == torch.uint8:
            part = part / 255.0
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
        count += part.numel() // channels
    if count == 0:
        return (0.5,) * channels, (0.5,) * channels
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)
