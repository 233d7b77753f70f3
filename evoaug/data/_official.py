"""The base of the datasets stored in torchvision's on-disk formats (CIFAR, SVHN, MNIST).

``download=True`` fetches the files with ``torchvision.datasets`` (checksums verified there).
MNIST and Fashion-MNIST are then read by torchvision itself; CIFAR and SVHN are read here from
the same files (the pickled batches, the ``.mat`` files), because torchvision refuses any file
whose MD5 differs from the official release, which rules out subsets and generated test data.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from typing_extensions import override

from evoaug.data._base import ImageDataModule
from evoaug.data._checks import check_fraction, check_root
from evoaug.data._memory import LoadedData, Split, resize_images
from evoaug.data._split import stratified_split
from evoaug.exceptions import ConfigError

__all__ = ["TorchvisionDataModule"]


class TorchvisionDataModule(ImageDataModule):
    """Base of the datasets with an official train/test split in torchvision's formats.

    The validation split is a seeded, stratified ``val_fraction`` of the official training set.
    Subclasses set ``default_root`` (used when ``root`` is None), ``expected`` (what must be
    under ``root``, for the error message), ``source`` (where the files come from) and
    implement ``_missing``, ``_download`` and ``_read``.
    """

    expected: ClassVar[str] = ""
    source: ClassVar[str] = ""
    default_root: ClassVar[str] = "data"

    def __init__(
        self,
        *,
        root: str | None = None,
        download: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        image_size: int | None = None,
        limit_train: int | None = None,
        limit_test: int | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            image_size=image_size,
            limit_train=limit_train,
            limit_test=limit_test,
        )
        check_fraction("val_fraction", val_fraction)
        root = self.default_root if root is None else root
        self.root = check_root(root)
        self.download = bool(download)
        self.val_fraction = val_fraction

    # ---- subclass hooks ----------------------------------------------------------------------

    def _missing(self) -> list[str]:
        """The expected files or folders that do not exist."""
        raise NotImplementedError

    def _download(self) -> None:
        raise NotImplementedError

    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """uint8 images ``[N, C, H, W]``, int64 labels and the class names."""
        raise NotImplementedError

    # ---- shared logic ------------------------------------------------------------------------

    @override
    def prepare_data(self) -> None:
        """Download the files when ``download=True`` and they are missing (rank 0 only).

        Raises:
            ConfigError: The download failed; the message says where to put the files instead.
        """
        if self.download and self._missing():
            try:
                self._download()
            except Exception as err:  # network, checksum or archive errors, all alike to users
                raise ConfigError(
                    f"downloading {self.dataset_name} to {self.root!r} failed ({err}). "
                    f"{self._how_to_get()}"
                ) from err

    def _how_to_get(self) -> str:
        return (
            f"Expected {self.expected} in `root`={self.root!r}. Pass `download=True` on a machine "
            f"with internet, or copy the files there ({self.source})"
        )

    def check_files(self) -> None:
        """Raise a ConfigError naming the missing files and how to get them."""
        missing = self._missing()
        if missing:
            shown = ", ".join(missing[:4]) + (
                f" and {len(missing) - 4} more" if len(missing) > 4 else ""
            )
            raise ConfigError(
                f"{self.dataset_name} files not found: missing {shown}. {self._how_to_get()}"
            )

    @override
    def _load(self, generator: torch.Generator) -> LoadedData:
        self.prepare_data()
        self.check_files()
        train_images, train_labels, class_names = self._read(train=True)
        test_images, test_labels, _ = self._read(train=False)
        train, val = stratified_split(train_labels, (self.val_fraction,), generator)
        test = torch.arange(len(test_labels))
        # Offsets let one strata tensor serve both index spaces in _limit.
        offset = len(train_labels)
        strata = torch.cat([train_labels, test_labels])
        train, val, test = self._limit(strata, train, val, test + offset, generator)
        test = test - offset
        full_train = Split(train_images, train_labels)
        full_test = Split(test_images, test_labels)
        train_split, val_split, test_split = (
            self._resized(full_train.select(train)),
            self._resized(full_train.select(val)),
            self._resized(full_test.select(test)),
        )
        return LoadedData(train_split, val_split, test_split, class_names=class_names)

    def _resized(self, split: Split) -> Split:
        if self.image_size is None:
            return split
        return Split(resize_images(split.images, self.image_size), split.labels, split.groups)
