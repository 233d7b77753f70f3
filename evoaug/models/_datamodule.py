"""What the classifier reads from a datamodule: sizes, names and batch layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from evoaug.exceptions import InputError

__all__ = ["datamodule_channels", "datamodule_int", "names", "split_batch", "trainer_datamodule"]


def trainer_datamodule(trainer: object) -> object:
    """The Trainer's datamodule, or None."""
    return getattr(trainer, "datamodule", None)


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(images, labels, groups or None)`` of a batch ``(x, y)`` or ``(x, y, g)``.

    Raises:
        InputError: The batch is not a 2- or 3-element tuple or list.

    """
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1], batch[2] if len(batch) == 3 else None
    shape = f"a {type(batch).__name__}"
    if isinstance(batch, (tuple, list)):
        shape += f" of {len(batch)} elements"
    raise InputError(
        f"Classifier batches must be (images, labels) or (images, labels, groups), got {shape}"
    )


def datamodule_int(datamodule: object, name: str) -> int | None:
    """``datamodule.<name>`` as an int, or None when the datamodule has no such attribute."""
    value = getattr(datamodule, name, None)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def datamodule_channels(datamodule: object) -> int | None:
    """Image channels: ``in_channels``, ``channels``, or ``image_shape[0]`` / ``dims[0]``."""
    for attribute in ("in_channels", "channels"):
        channels = datamodule_int(datamodule, attribute)
        if channels is not None:
            return channels
    for attribute in ("image_shape", "dims"):
        shape = getattr(datamodule, attribute, None)
        if isinstance(shape, Sequence) and len(shape) == 3 and isinstance(shape[0], int):
            return int(shape[0])
    return None


def names(given: object, minimum: int) -> list[str]:
    """``given`` as a list of strings, padded with ``str(id)`` to at least ``minimum`` names."""
    listed = []
    if isinstance(given, Sequence) and not isinstance(given, str):
        listed = [str(n) for n in given]
    return listed + [str(i) for i in range(len(listed), minimum)]
