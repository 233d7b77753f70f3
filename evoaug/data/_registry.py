"""Datamodules by name, for recipes and the command line."""

from __future__ import annotations

import inspect
from typing import Any

from evoaug.data._base import ImageDataModule
from evoaug.data._celeba import CelebADataModule
from evoaug.data._cifar import CIFAR10DataModule, CIFAR100DataModule
from evoaug.data._digits import ColoredDigitsDataModule, DigitsDataModule
from evoaug.data._folder import ImageFolderDataModule
from evoaug.data._mnist import FashionMNISTDataModule, MNISTDataModule, SVHNDataModule
from evoaug.data._utkface import UTKFaceDataModule
from evoaug.exceptions import ConfigError

__all__ = ["DATAMODULES", "get_datamodule"]

DATAMODULES: dict[str, type[ImageDataModule]] = {
    cls.dataset_name: cls
    for cls in (
        DigitsDataModule,
        ColoredDigitsDataModule,
        CIFAR10DataModule,
        CIFAR100DataModule,
        SVHNDataModule,
        MNISTDataModule,
        FashionMNISTDataModule,
        CelebADataModule,
        ImageFolderDataModule,
        UTKFaceDataModule,
    )
}


def get_datamodule(name: str, **kwargs: Any) -> ImageDataModule:
    """Build the datamodule registered as ``name`` with keyword arguments.

    Raises:
        ConfigError: ``name`` is unknown (the message lists the names), or an argument is bad.

    Example:
        >>> from evoaug.data import get_datamodule
        >>> get_datamodule("digits", image_size=16).dataset_name
        'digits'
    """
    if name not in DATAMODULES:
        raise ConfigError(f"`name` must be one of {sorted(DATAMODULES)}, got {name!r}")
    cls = DATAMODULES[name]
    try:
        return cls(**kwargs)
    except TypeError as err:  # a misspelled or missing argument
        accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
        raise ConfigError(f"{name}: {err}; its arguments are {accepted}") from None
