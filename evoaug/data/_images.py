"""Finding and decoding image files: class-per-folder trees, parallel PIL decoding at size."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from evoaug.data._memory import Split
from evoaug.exceptions import ConfigError

__all__ = [
    "IMAGE_EXTENSIONS",
    "decode_images",
    "find_images",
    "scan_class_folders",
    "select_and_decode",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
_THREADS = min(8, os.cpu_count() or 1)
_CHUNK = 256  # files per decoding task


def find_images(folder: str | Path) -> list[str]:
    """Paths of all image files under ``folder`` (recursive, hidden entries skipped), sorted."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend(
            os.path.join(dirpath, f)
            for f in filenames
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        )
    return sorted(found)


def scan_class_folders(
    folder: Path, class_names: Sequence[str] | None = None
) -> tuple[list[str], list[int], list[str]]:
    """Files and labels of a class-per-folder tree ``folder/<class>/**/<image>``.

    Args:
        folder: The tree's root.
        class_names: Classes already known (from the training tree): every subfolder must be
            one of them. None takes the sorted subfolder names.

    Returns:
        ``(paths, labels, class_names)``.

    Raises:
        ConfigError: No class folders, a folder not among ``class_names``, or no images.
    """
    subfolders = sorted(
        d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    if not subfolders:
        raise ConfigError(
            f"{folder} has no class folders: expected {folder}/<class name>/<image files>"
        )
    if class_names is None:
        class_names = subfolders
    unknown = sorted(set(subfolders) - set(class_names))
    if unknown:
        raise ConfigError(
            f"{folder} has class folders {unknown} that the training tree lacks; training "
            f"classes are {list(class_names)}"
        )
    index = {name: i for i, name in enumerate(class_names)}
    paths: list[str] = []
    labels: list[int] = []
    for name in subfolders:
        files = find_images(folder / name)
        paths.extend(files)
        labels.extend([index[name]] * len(files))
    if not paths:
        raise ConfigError(f"{folder} has class folders but no image files ({IMAGE_EXTENSIONS})")
    return paths, labels, list(class_names)


def _decode(path: str, size: int | None, mode: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as file:
        if size is not None:
            file.draft(mode, (size, size))  # JPEG: decode at a reduced scale, still >= size
        img = file.convert(mode)
        if size is not None:
            # Shorter side to `size`, then the central square (torchvision Resize + CenterCrop).
            w, h = img.size
            scale = size / min(w, h)
            new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
            if (new_w, new_h) != (w, h):
                img = img.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = (new_w - size) // 2, (new_h - size) // 2
            img = img.crop((left, top, left + size, top + size))
        return np.asarray(img, dtype=np.uint8)


def decode_images(
    paths: Sequence[str], size: int | None, mode: Literal["RGB", "L"] = "RGB"
) -> torch.Tensor:
    """Decode image files into one uint8 tensor ``[N, C, H, W]`` (threads; PIL frees the GIL).

    With ``size``, each image's shorter side is resized to ``size`` (bilinear) and the central
    ``size x size`` square kept; without, all images must share one size.

    Raises:
        ConfigError: A file cannot be decoded, or sizes differ while ``size`` is None.
    """
    channels = 3 if mode == "RGB" else 1
    if not paths:
        side = size or 1
        return torch.empty((0, channels, side, side), dtype=torch.uint8)

    def load(path: str) -> np.ndarray:
        try:
            return _decode(path, size, mode)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot decode image {path}: {err}") from err

    first = load(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)

    def store(start: int) -> None:
        for i in range(start, min(start + _CHUNK, len(paths))):
            array = first if i == 0 else load(paths[i])
            if array.shape != first.shape:
                raise ConfigError(
                    f"images differ in size ({paths[0]} is {first.shape[1]}x{first.shape[0]}, "
                    f"{paths[i]} is {array.shape[1]}x{array.shape[0]}); set `image_size` to "
                    "resize them all"
                )
            out[i] = array

    # Threads pay off for larger images (PIL releases the GIL while decoding and resizing).
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        list(pool.map(store, range(0, len(paths), _CHUNK)))
    images = torch.from_numpy(out)
    images = images.unsqueeze(1) if mode == "L" else images.permute(0, 3, 1, 2)
    return images.contiguous()


def select_and_decode(
    paths: Sequence[str],
    labels: torch.Tensor,
    groups: torch.Tensor | None,
    parts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    size: int | None,
    mode: Literal["RGB", "L"],
) -> tuple[Split, Split, Split]:
    """Decode only the files the train, val and test index sets select; one Split for each."""
    chosen = torch.cat(parts)
    images = decode_images([paths[i] for i in chosen.tolist()], size, mode)
    train, val, _ = (len(p) for p in parts)
    full = Split(images, labels[chosen], None if groups is None else groups[chosen])
    bounds = (0, train, train + val, len(chosen))
    return (
        full.select(torch.arange(bounds[0], bounds[1])),
        full.select(torch.arange(bounds[1], bounds[2])),
        full.select(torch.arange(bounds[2], bounds[3])),
    )
