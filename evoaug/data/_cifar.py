"""CIFAR-10 and CIFAR-100 from the official release's pickled batches (torchvision's layout)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from typing_extensions import override

from evoaug.data._official import TorchvisionDataModule
from evoaug.exceptions import ConfigError

__all__ = ["CIFAR100DataModule", "CIFAR10DataModule"]


def _unpickle(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        # The CIFAR release is a Python 2 pickle; latin1 reads its byte strings (as torchvision).
        data: dict[str, Any] = pickle.load(f, encoding="latin1")
    return data


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10 (Krizhevsky 2009): 50,000 + 10,000 RGB 32x32 images of 10 classes.

    Reads torchvision's layout: ``{root}/cifar-10-batches-py/`` with ``data_batch_1`` to
    ``data_batch_5``, ``test_batch`` and ``batches.meta``. Batches are ``(images, labels)``.
    The batches are Python pickles, as in the official release (and torchvision): unpickling
    can run code, so point ``root`` only at files you trust.

    Args:
        root: Folder that holds ``cifar-10-batches-py``; None means ``"data/cifar10"``.
        download: Download the archive with torchvision when the files are missing.
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Share of the official training set held out for validation.
        seed: Seeds the split, the subsets and the training shuffle.
        image_size: Resize to ``image_size x image_size``; None keeps 32x32.
        limit_train: Keep a seeded, stratified subset of this many training images (the
            validation split shrinks in proportion); None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.

    Raises:
        ConfigError: Bad arguments (at construction) or missing files (at ``setup``); the
            message says which files are expected where and how to get them.
    """

    dataset_name = "cifar10"
    folder = "cifar-10-batches-py"
    train_files: ClassVar[tuple[str, ...]] = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files: ClassVar[tuple[str, ...]] = ("test_batch",)
    meta_file, names_key, labels_key = "batches.meta", "label_names", "labels"
    expected = "the folder `cifar-10-batches-py` (data_batch_1..5, test_batch, batches.meta)"
    source = (
        "extract https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and copy its "
        "`cifar-10-batches-py` folder into `root`"
    )

    default_root = "data/cifar10"

    @override
    def _missing(self) -> list[str]:
        folder = Path(self.root) / self.folder
        names = (*self.train_files, *self.test_files, self.meta_file)
        return [str(folder / n) for n in names if not (folder / n).is_file()]

    @override
    def _download(self) -> None:
        from torchvision import datasets

        cls = datasets.CIFAR10 if self.dataset_name == "cifar10" else datasets.CIFAR100
        cls(self.root, train=True, download=True)

    @override
    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        folder = Path(self.root) / self.folder
        images, labels = [], []
        unreadable = (OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError)
        for name in self.train_files if train else self.test_files:
            try:
                entry = _unpickle(folder / name)
                batch = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                batch_labels = list(entry[self.labels_key])
            except unreadable as err:
                raise ConfigError(
                    f"cannot read {folder / name} as a CIFAR batch ({err!r}). {self._how_to_get()}"
                ) from err
            if len(batch) != len(batch_labels):
                raise ConfigError(
                    f"{folder / name} holds {len(batch)} images but {len(batch_labels)} labels; "
                    f"the file is damaged. {self._how_to_get()}"
                )
            images.append(batch)
            labels.extend(batch_labels)
        try:
            names = [str(n) for n in _unpickle(folder / self.meta_file)[self.names_key]]
        except unreadable as err:
            raise ConfigError(
                f"cannot read {folder / self.meta_file} as CIFAR metadata ({err!r}). "
                f"{self._how_to_get()}"
            ) from err
        return (
            torch.from_numpy(np.concatenate(images)),
            torch.as_tensor(labels, dtype=torch.long),
            names,
        )


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100 (Krizhevsky 2009): 50,000 + 10,000 RGB 32x32 images of 100 fine classes.

    Reads torchvision's layout: ``{root}/cifar-100-python/`` with ``train``, ``test`` and
    ``meta``. Same arguments as :class:`CIFAR10DataModule` (``root`` defaults to
    ``"data/cifar100"``).
    """

    dataset_name = "cifar100"
    folder = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    meta_file, names_key, labels_key = "meta", "fine_label_names", "fine_labels"
    expected = "the folder `cifar-100-python` (train, test, meta)"
    source = (
        "extract https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and copy its "
        "`cifar-100-python` folder into `root`"
    )

    default_root = "data/cifar100"
