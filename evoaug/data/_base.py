"""The shared base of evoaug's datamodules: seeded loading, metadata, limits and loaders.

Every datamodule decodes its images once into a tensor (uint8, or float32 for digits) and
converts each sample to float32 in [0, 1] on access. Images are never normalized here: evoaug
augments first, and the model normalizes with :attr:`ImageDataModule.normalization`.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader
from typing_extensions import override

from evoaug.data._checks import check_choice, check_int
from evoaug.data._memory import ImageTensorDataset, LoadedData, mean_std
from evoaug.data._sampler import EpochShuffleSampler
from evoaug.data._split import stratified_subset
from evoaug.exceptions import ConfigError

__all__ = ["SPLITS", "ImageDataModule", "SplitName"]

SplitName = Literal["train", "val", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "val", "test")


class ImageDataModule(pl.LightningDataModule):
    """Base of evoaug's datamodules: seeded splits in memory, images float32 in [0, 1].

    Subclasses implement ``_load`` (decode the files, split, return :class:`LoadedData`).
    ``num_classes``, ``class_names``, ``group_names``, ``channels``, ``image_shape`` and
    ``normalization`` are available after :meth:`setup`; reading one before runs ``setup``.

    Args:
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        seed: Seeds the splits, the subsets and the training shuffle.
        image_size: Resize images to ``image_size x image_size``; None keeps the native size.
        limit_train: Keep a seeded, stratified subset of this many training images; the
            validation split shrinks in proportion. None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.
    """

    dataset_name = "base"

    def __init__(
        self,
        *,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        image_size: int | None = None,
        limit_train: int | None = None,
        limit_test: int | None = None,
        sensitive_attribute: str | None = None,
    ) -> None:
        super().__init__()
        check_int("batch_size", batch_size, 1)
        check_int("num_workers", num_workers, 0)
        check_int("seed", seed, 0)
        check_int("image_size", image_size, 1, optional=True)
        check_int("limit_train", limit_train, 1, optional=True)
        check_int("limit_test", limit_test, 1, optional=True)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.image_size = image_size
        self.limit_train = limit_train
        self.limit_test = limit_test
        self.sensitive_attribute = sensitive_attribute
        self._data: LoadedData | None = None
        self._normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    # ---- what subclasses implement -------------------------------------------------------

    def _load(self, generator: torch.Generator) -> LoadedData:
        """Decode, split and subset the data; draw all randomness from ``generator``."""
        raise NotImplementedError

    # ---- Lightning hooks -----------------------------------------------------------------

    @override
    def setup(self, stage: str | None = None) -> None:
        """Load the data (once; later calls do nothing).

        Raises:
            ConfigError: Files are missing or unreadable; the message says what is expected
                where and how to get it.
        """
        self._loaded()

    @override
    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Shuffled training batches; the order depends on the seed and the epoch only."""
        return self._loader("train", shuffle=True)

    @override
    def val_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Validation batches in a fixed order."""
        return self._loader("val", shuffle=False)

    @override
    def test_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """Test batches in a fixed order."""
        return self._loader("test", shuffle=False)

    @override
    def predict_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        """The test split, in a fixed order."""
        return self._loader("test", shuffle=False)

    # ---- metadata --------------------------------------------------------------------------

    def _loaded(self) -> LoadedData:
        if self._data is None:
            start = time.perf_counter()
            data = self._load(torch.Generator().manual_seed(self.seed))
            empty = [name for name in SPLITS if len(getattr(data, name)) == 0]
            if empty:
                counts = {name: len(getattr(data, name)) for name in SPLITS}
                raise ConfigError(
                    f"{self.dataset_name}: the {' and '.join(empty)} split came out empty "
                    f"(sizes {counts}); raise `limit_train`/`limit_test` or the split fractions "
                    "(`val_fraction`, `test_fraction` where the dataset has them)"
                )
            self._data = data
            sizes = " / ".join(f"{name} {len(getattr(data, name))}" for name in SPLITS)
            c, h, w = self.image_shape
            groups = (
                f", groups by {self.sensitive_attribute}" if data.train.groups is not None else ""
            )
            rank_zero_info(
                f"evoaug data: {self.dataset_name}: {sizes} images of {c}x{h}x{w}, "
                f"{self.num_classes} classes{groups} "
                f"(loaded in {time.perf_counter() - start:.1f} s)"
            )
        return self._data

    @property
    def data(self) -> LoadedData:
        """The loaded splits (runs :meth:`setup` if needed)."""
        return self._loaded()

    def dataset(self, split: SplitName) -> ImageTensorDataset:
        """The ``"train"``, ``"val"`` or ``"test"`` split as a dataset."""
        check_choice("split", split, SPLITS)
        return ImageTensorDataset(getattr(self.data, split))

    @property
    def class_names(self) -> list[str]:
        """Name of every class id."""
        return list(self.data.class_names)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.data.class_names)

    @property
    def group_names(self) -> list[str] | None:
        """Name of every group id, or None when batches carry no groups."""
        names = self.data.group_names
        return None if names is None else list(names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every image."""
        c, h, w = self.data.train.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def channels(self) -> int:
        """Number of image channels (1 for grayscale, 3 for colour)."""
        return self.image_shape[0]

    @property
    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel ``(mean, std)`` of the training images in [0, 1]."""
        if self._normalization is None:
            self._normalization = mean_std(self.data.train.images)
        return self._normalization

    def describe(self) -> dict[str, Any]:
        """Plain-value description of the data, for reports and logs.

        Returns:
            ``dataset_name``, ``num_classes``, ``class_names``, ``group_names``,
            ``sensitive_attribute``, ``channels``, ``image_shape`` (list), ``normalization``
            (``{"mean": [...], "std": [...]}``), ``sizes`` (per split), ``group_counts`` (per
            split, or None), ``seed``, ``limit_train`` and ``limit_test``.
        """
        data = self.data
        mean, std = self.normalization
        group_counts = None
        if self.group_names is not None:
            group_counts = {
                name: _counts(getattr(data, name).groups, len(self.group_names)) for name in SPLITS
            }
        return {
            "dataset_name": self.dataset_name,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "group_names": self.group_names,
            "sensitive_attribute": self.sensitive_attribute,
            "channels": self.channels,
            "image_shape": list(self.image_shape),
            "normalization": {"mean": list(mean), "std": list(std)},
            "sizes": {name: len(getattr(data, name)) for name in SPLITS},
            "group_counts": group_counts,
            "seed": self.seed,
            "limit_train": self.limit_train,
            "limit_test": self.limit_test,
        }

    # ---- helpers for subclasses ----------------------------------------------------------

    def _limit(
        self,
        strata: torch.Tensor,
        train: torch.Tensor,
        val: torch.Tensor,
        test: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Apply ``limit_train`` (val shrinks in proportion) and ``limit_test`` to index sets."""
        if self.limit_train is not None and self.limit_train < len(train):
            n_val = round(self.limit_train * len(val) / max(len(train), 1))
            train = stratified_subset(strata, train, self.limit_train, generator)
            val = stratified_subset(strata, val, max(n_val, 1), generator)
        if self.limit_test is not None:
            test = stratified_subset(strata, test, self.limit_test, generator)
        return train, val, test

    def _loader(self, split: SplitName, *, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
        dataset = self.dataset(split)
        # The order depends on (seed, epoch) only, so a resumed run sees the same batches.
        sampler = EpochShuffleSampler(len(dataset), self.seed) if shuffle else None
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None  # worker seeds
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )


def _counts(values: torch.Tensor | None, n: int) -> list[int]:
    if values is None:
        return [0] * n
    return [int(c) for c in torch.bincount(values, minlength=n)]
