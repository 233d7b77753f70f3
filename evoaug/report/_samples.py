"""``samples.pt`` / ``samples.npz``: clean probe images per group for the sample grid.

Keys ``images`` (uint8 ``[N, C, H, W]`` with C in 1 or 3, or floats in ``[0, 1]``), ``labels``
and ``groups`` (``[N]`` integer ids). :class:`evoaug.EvoAugCallback` writes ``samples.pt`` (a
few validation images per group); ``samples.npz`` is the same for other writers. Both are read
without running code: ``torch.load(weights_only=True)`` and ``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["SAMPLES_FILES", "Samples", "read_samples"]

SAMPLES_FILES = ("samples.pt", "samples.npz")


@dataclass(frozen=True)
class Samples:
    """Clean probe images for the sample grid: uint8 ``[N, C, H, W]``, labels and groups."""

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    source: str


def read_samples(path: Path, notes: list[str]) -> Samples | None:
    """The first samples file found, or ``None`` with a note saying why."""
    without = "the grid of augmented samples is left out"
    for name in SAMPLES_FILES:
        file = path / name
        if not file.is_file():
            continue
        try:
            data = _load_arrays(file)
            return _check_samples(data, name)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
            notes.append(f"{name} could not be read ({err}); {without}.")
            return None
    notes.append(f"no {' or '.join(SAMPLES_FILES)} with probe images; {without}.")
    return None


def _load_arrays(file: Path) -> dict[str, np.ndarray]:
    if file.suffix == ".npz":
        with np.load(file, allow_pickle=False) as npz:
            return {key: np.asarray(npz[key]) for key in ("images", "labels", "groups")}
    import torch

    data = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise ValueError(f"expected a dict of tensors, got {type(data).__name__}")
    out = {}
    for key in ("images", "labels", "groups"):
        value = data[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"`{key}` must be a tensor, got {type(value).__name__}")
        out[key] = value.detach().cpu().numpy()
    return out


def _check_samples(data: dict[str, np.ndarray], source: str) -> Samples:
    images, labels, groups = data["images"], data["labels"], data["groups"]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"`images` must be [N, C, H, W] with C in (1, 3), got {images.shape}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating) or images.min() < 0 or images.max() > 1:
            raise ValueError(f"`images` must be uint8 or floats in [0, 1], got {images.dtype}")
        images = np.round(images * 255).astype(np.uint8)
    n = images.shape[0]
    if labels.shape != (n,) or groups.shape != (n,):
        raise ValueError(f"`labels` and `groups` must have shape ({n},)")
    return Samples(images, labels.astype(np.int64), groups.astype(np.int64), source)
