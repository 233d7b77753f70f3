"""CelebA: aligned face crops with 40 binary attributes; target and sensitive attribute chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from typing_extensions import override

from evoaug.data._base import ImageDataModule
from evoaug.data._checks import check_root
from evoaug.data._images import select_and_decode
from evoaug.data._memory import LoadedData
from evoaug.exceptions import ConfigError

__all__ = ["CelebADataModule"]

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDER = "img_align_celeba"


def read_celeba_attributes(path: Path) -> tuple[list[str], list[str], torch.Tensor]:
    """``(file names, attribute names, values in {0, 1} [N, A])`` from ``list_attr_celeba.txt``.

    The file: a count line, a line of attribute names, then ``<file> <+1/-1 per attribute>``.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2:
        raise ConfigError(f"{path} is not a CelebA attribute file: fewer than 2 lines")
    names = lines[1].split()
    files, rows = [], []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise ConfigError(
                f"{path} line {number}: expected a file name and {len(names)} values, got "
                f"{len(fields)} fields"
            )
        files.append(fields[0])
        rows.append([int(v) > 0 for v in fields[1:]])
    return files, names, torch.as_tensor(rows, dtype=torch.long).reshape(len(rows), len(names))


def _read_partition(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == 2:
            out[fields[0]] = int(fields[1])
    return out


class CelebADataModule(ImageDataModule):
    """CelebA (Liu et al. 2015): 202,599 aligned face crops (178x218), 40 binary attributes.

    Reads torchvision's layout: ``{root}/celeba/`` (or ``{root}/`` itself) with
    ``img_align_celeba/*.jpg``, ``list_attr_celeba.txt`` and ``list_eval_partition.txt`` (the
    official train/valid/test partition; 0/1/2). The identity, bounding-box and landmark files
    torchvision also downloads are not needed. Labels are ``target_attribute`` (0 = absent,
    1 = present); with a ``sensitive_attribute``, batches are ``(images, labels, groups)`` with
    groups the same way. Images are resized on decoding (shorter side, then the central square).

    Args:
        root: Folder that holds ``celeba/`` (torchvision's ``root``) or the files themselves.
        download: Download with torchvision (needs ``gdown`` and internet) when files are
            missing.
        target_attribute: The attribute to predict, a column of ``list_attr_celeba.txt``.
        sensitive_attribute: The attribute that defines the groups; None yields no groups.
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        seed: Seeds the subsets and the training shuffle.
        image_size: Side of the square images; None keeps 178x218.
        limit_train: Keep a seeded, stratified subset of this many training images (the
            validation split shrinks in proportion); None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.

    Raises:
        ConfigError: Bad arguments (at construction); missing files or an unknown attribute
            (at ``setup``, where the attribute names are read).
    """

    dataset_name = "celeba"

    def __init__(
        self,
        *,
        root: str = "data/celeba",
        download: bool = False,
        target_attribute: str = "Smiling",
        sensitive_attribute: str | None = "Male",
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        image_size: int | None = 64,
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
            sensitive_attribute=sensitive_attribute,
        )
        if not isinstance(target_attribute, str) or not target_attribute:
            raise ConfigError(
                f"`target_attribute` must be an attribute name, got {target_attribute!r}"
            )
        if sensitive_attribute == target_attribute:
            raise ConfigError(
                "`sensitive_attribute` must differ from `target_attribute` (or be None), got "
                f"both {target_attribute!r}"
            )
        self.root = check_root(root)
        self.download = bool(download)
        self.target_attribute = target_attribute

    def _folder(self) -> Path:
        nested = Path(self.root) / "celeba"
        return nested if (nested / ATTR_FILE).is_file() else Path(self.root)

    def _missing(self) -> list[str]:
        folder = self._folder()
        missing = [
            str(folder / f) for f in (ATTR_FILE, PARTITION_FILE) if not (folder / f).is_file()
        ]
        if not (folder / IMAGE_FOLDER).is_dir():
            missing.append(str(folder / IMAGE_FOLDER) + "/")
        return missing

    def _how_to_get(self) -> str:
        return (
            f"Expected `{IMAGE_FOLDER}/` (the extracted img_align_celeba.zip), `{ATTR_FILE}` and "
            f"`{PARTITION_FILE}` in {self.root}/celeba/ or {self.root}/. Pass `download=True` on "
            "a machine with internet (needs `pip install gdown`), or copy the files there (from "
            "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html)"
        )

    @override
    def prepare_data(self) -> None:
        """Download the files with torchvision when ``download=True`` and they are missing.

        Raises:
            ConfigError: The download failed; the message says where to put the files instead.
        """
        if self.download and self._missing():
            try:
                from torchvision import datasets

                datasets.CelebA(self.root, split="all", target_type=[], download=True)
            except Exception as err:  # network, gdown quota, checksum: all alike to users
                raise ConfigError(
                    f"downloading CelebA failed ({err}). {self._how_to_get()}"
                ) from err

    @override
    def _load(self, generator: torch.Generator) -> LoadedData:
        self.prepare_data()
        missing = self._missing()
        if missing:
            raise ConfigError(
                f"celeba files not found: missing {', '.join(missing)}. {self._how_to_get()}"
            )
        folder = self._folder()
        files, names, values = read_celeba_attributes(folder / ATTR_FILE)
        for arg, name in (
            ("target_attribute", self.target_attribute),
            ("sensitive_attribute", self.sensitive_attribute),
        ):
            if name is not None and name not in names:
                raise ConfigError(f"`{arg}` must be one of {names}, got {name!r}")
        partition = _read_partition(folder / PARTITION_FILE)
        unlisted = [f for f in files if f not in partition]
        if unlisted:
            raise ConfigError(
                f"{len(unlisted)} images of {ATTR_FILE} are not in {PARTITION_FILE}, e.g. "
                f"{unlisted[:5]}"
            )
        where = torch.as_tensor([partition[f] for f in files])
        labels = values[:, names.index(self.target_attribute)].contiguous()
        groups = None
        group_names = None
        strata = labels
        if self.sensitive_attribute is not None:
            groups = values[:, names.index(self.sensitive_attribute)].contiguous()
            group_names = [f"not {self.sensitive_attribute}", self.sensitive_attribute]
            strata = labels * 2 + groups
        train, val, test = (torch.nonzero(where == i).flatten() for i in range(3))
        train, val, test = self._limit(strata, train, val, test, generator)
        paths = [str(folder / IMAGE_FOLDER / f) for f in files]
        train_split, val_split, test_split = select_and_decode(
            paths, labels, groups, (train, val, test), self.image_size, "RGB"
        )
        return LoadedData(
            train_split,
            val_split,
            test_split,
            class_names=[f"not {self.target_attribute}", self.target_attribute],
            group_names=group_names,
        )

    @override
    def describe(self) -> dict[str, Any]:
        """:meth:`ImageDataModule.describe` plus ``root`` and ``target_attribute``."""
        out = super().describe()
        out.update(root=self.root, target_attribute=self.target_attribute)
        return out
