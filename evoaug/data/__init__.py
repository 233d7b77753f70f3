"""Datamodules for evoaug's recipes: images float32 in [0, 1], labels, and groups where known.

Every datamodule is a ``pytorch_lightning.LightningDataModule`` whose batches are
``(images, labels)``, or ``(images, labels, groups)`` when the data has a sensitive attribute.
Images are not normalized (evoaug augments first); ``normalization`` gives the training mean/std.

Example:
    >>> from evoaug.data import DATAMODULES, get_datamodule
    >>> sorted(DATAMODULES)[:3]
    ['celeba', 'cifar10', 'cifar100']
"""

from evoaug.data._base import ImageDataModule
from evoaug.data._celeba import CelebADataModule
from evoaug.data._cifar import CIFAR10DataModule, CIFAR100DataModule
from evoaug.data._digits import ColoredDigitsDataModule, DigitsDataModule
from evoaug.data._folder import ImageFolderDataModule
from evoaug.data._memory import ImageTensorDataset, LoadedData, Split
from evoaug.data._mnist import FashionMNISTDataModule, MNISTDataModule, SVHNDataModule
from evoaug.data._official import TorchvisionDataModule
from evoaug.data._registry import DATAMODULES, get_datamodule
from evoaug.data._utkface import UTKFaceDataModule, parse_utkface_name

__all__ = [
    "DATAMODULES",
    "CIFAR100DataModule",
    "CIFAR10DataModule",
    "CelebADataModule",
    "ColoredDigitsDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageTensorDataset",
    "LoadedData",
    "MNISTDataModule",
    "SVHNDataModule",
    "Split",
    "TorchvisionDataModule",
    "UTKFaceDataModule",
    "get_datamodule",
    "parse_utkface_name",
]
