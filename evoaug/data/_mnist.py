"""MNIST, Fashion-MNIST and SVHN in torchvision's on-disk formats."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from typing_extensions import override

from evoaug.data._official import TorchvisionDataModule
from evoaug.exceptions import ConfigError

__all__ = ["FashionMNISTDataModule", "MNISTDataModule", "SVHNDataModule"]

DIGIT_NAMES = [str(d) for d in range(10)]
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(TorchvisionDataModule):
    """MNIST (LeCun et al. 1998): 60,000 + 10,000 grayscale 28x28 handwritten digits.

    Read by ``torchvision.datasets.MNIST`` from ``{root}/MNIST/raw/`` (the four uncompressed
    idx files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``) or the legacy
    ``{root}/MNIST/processed/{training,test}.pt``. Images have 1 channel; batches are
    ``(images, labels)``.

    Args:
        root: Folder that holds ``MNIST/``; None means ``"data/mnist"``.
        download: Download the files with torchvision when they are missing.
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Share of the official training set held out for validation.
        seed: Seeds the split, the subsets and the training shuffle.
        image_size: Resize to ``image_size x image_size``; None keeps 28x28.
        limit_train: Keep a seeded, stratified subset of this many training images (the
            validation split shrinks in proportion); None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.

    Raises:
        ConfigError: Bad arguments (at construction) or missing files (at ``setup``).
    """

    dataset_name = "mnist"
    torchvision_name = "MNIST"
    classes: ClassVar[list[str]] = DIGIT_NAMES
    expected = "the folder `MNIST/raw` with the uncompressed idx files " + ", ".join(IDX_FILES)
    source = "from http://yann.lecun.com/exdb/mnist/ or a mirror; gunzip the .gz files"

    default_root = "data/mnist"

    def _dataset_class(self) -> type:
        from torchvision import datasets

        cls: type = getattr(datasets, self.torchvision_name)
        return cls

    @override
    def _missing(self) -> list[str]:
        base = Path(self.root) / self.torchvision_name
        if all((base / "processed" / f).is_file() for f in ("training.pt", "test.pt")):
            return []
        return [str(base / "raw" / f) for f in IDX_FILES if not (base / "raw" / f).is_file()]

    @override
    def _download(self) -> None:
        self._dataset_class()(self.root, train=True, download=True)

    @override
    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        try:
            data = self._dataset_class()(self.root, train=train, download=False)
        except (RuntimeError, OSError, ValueError, AssertionError) as err:
            # (torchvision asserts on a damaged idx header)
            raise ConfigError(
                f"cannot read {self.dataset_name} ({err!r}). {self._how_to_get()}"
            ) from err
        images = torch.as_tensor(data.data, dtype=torch.uint8).unsqueeze(1)
        targets = torch.as_tensor(data.targets, dtype=torch.long)
        if len(images) != len(targets):
            split = "training" if train else "test"
            raise ConfigError(
                f"the {self.dataset_name} {split} files hold {len(images)} images but "
                f"{len(targets)} labels; they are damaged. {self._how_to_get()}"
            )
        return images, targets, list(self.classes)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Xiao et al. 2017): 60,000 + 10,000 grayscale 28x28 clothing images.

    Read by ``torchvision.datasets.FashionMNIST`` from ``{root}/FashionMNIST/raw/`` (the same
    four idx file names as MNIST). Same arguments as :class:`MNISTDataModule` (``root``
    defaults to ``"data/fashion-mnist"``).
    """

    dataset_name = "fashion-mnist"
    torchvision_name = "FashionMNIST"
    classes: ClassVar[list[str]] = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip
    expected = "the folder `FashionMNIST/raw` with the uncompressed idx files " + ", ".join(
        IDX_FILES
    )
    source = "from https://github.com/zalandoresearch/fashion-mnist; gunzip the .gz files"

    default_root = "data/fashion-mnist"


class SVHNDataModule(TorchvisionDataModule):
    """SVHN (Netzer et al. 2011): 73,257 + 26,032 RGB 32x32 house-number digits.

    Reads torchvision's layout: ``{root}/train_32x32.mat`` and ``{root}/test_32x32.mat`` (and
    ``extra_32x32.mat`` with ``use_extra``). Label 10 in the files is digit 0, as in torchvision.
    Batches are ``(images, labels)``.

    Args:
        root: Folder that holds the ``.mat`` files.
        download: Download the files with torchvision when they are missing.
        use_extra: Add the 531,131 "extra" images to the training set.
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Share of the training images held out for validation.
        seed: Seeds the split, the subsets and the training shuffle.
        image_size: Resize to ``image_size x image_size``; None keeps 32x32.
        limit_train: Keep a seeded, stratified subset of this many training images (the
            validation split shrinks in proportion); None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.

    Raises:
        ConfigError: Bad arguments (at construction) or missing files (at ``setup``).
    """

    dataset_name = "svhn"
    default_root = "data/svhn"
    expected = "`train_32x32.mat` and `test_32x32.mat` (and `extra_32x32.mat` with use_extra)"
    source = "from http://ufldl.stanford.edu/housenumbers/"

    def __init__(
        self,
        *,
        root: str = "data/svhn",
        download: bool = False,
        use_extra: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        seed: int = 0,
        image_size: int | None = None,
        limit_train: int | None = None,
        limit_test: int | None = None,
    ) -> None:
        super().__init__(
            root=root,
            download=download,
            batch_size=batch_size,
            num_workers=num_workers,
            val_fraction=val_fraction,
            seed=seed,
            image_size=image_size,
            limit_train=limit_train,
            limit_test=limit_test,
        )
        self.use_extra = bool(use_extra)

    def _splits(self) -> tuple[str, ...]:
        return ("train", "test", "extra") if self.use_extra else ("train", "test")

    @override
    def _missing(self) -> list[str]:
        paths = [Path(self.root) / f"{s}_32x32.mat" for s in self._splits()]
        return [str(p) for p in paths if not p.is_file()]

    @override
    def _download(self) -> None:
        from torchvision import datasets

        for split in self._splits():
            datasets.SVHN(self.root, split=split, download=True)

    def _read_mat(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        import scipy.io  # type: ignore[import-untyped]

        path = Path(self.root) / f"{split}_32x32.mat"
        try:
            mat = scipy.io.loadmat(str(path))
            images = np.asarray(mat["X"], dtype=np.uint8).transpose(3, 2, 0, 1)  # HWCN -> NCHW
            labels = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
        except (OSError, KeyError, ValueError, scipy.io.matlab.MatReadError) as err:
            raise ConfigError(
                f"cannot read {path} as SVHN ({err!r}). {self._how_to_get()}"
            ) from err
        if len(images) != len(labels):
            raise ConfigError(
                f"{path} holds {len(images)} images but {len(labels)} labels; the file is "
                f"damaged. {self._how_to_get()}"
            )
        labels[labels == 10] = 0
        return images, labels

    @override
    def _read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        parts = [self._read_mat(s) for s in (("train", "extra") if self.use_extra else ("train",))]
        if not train:
            parts = [self._read_mat("test")]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels), DIGIT_NAMES
