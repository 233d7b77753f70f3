"""Any class-per-folder image tree, with optional group labels from a CSV file."""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from typing_extensions import override

from evoaug.data._base import ImageDataModule
from evoaug.data._checks import check_root, check_split_fractions
from evoaug.data._images import scan_class_folders, select_and_decode
from evoaug.data._memory import LoadedData
from evoaug.data._split import stratified_split
from evoaug.exceptions import ConfigError

__all__ = ["ImageFolderDataModule"]


class ImageFolderDataModule(ImageDataModule):
    """Images in class folders (``<class>/<image>``), as torchvision's ``ImageFolder`` reads them.

    Layouts: ``{root}/{train_dir}/<class>/...`` with optional ``{root}/{val_dir}/<class>/...``
    and ``{root}/{test_dir}/<class>/...``; splits that are missing are carved from the training
    tree (seeded, stratified). When ``{root}/{train_dir}`` does not exist, ``root`` itself is
    the class tree and all three splits are carved from it. Class names are the training
    tree's sorted folder names. Files are decoded once, in parallel, at ``image_size``
    (``limit_train``/``limit_test`` subsample before decoding).

    With ``groups_csv``, batches are ``(images, labels, groups)``: the CSV has columns ``path``
    (relative to ``root``, ``/``-separated, e.g. ``train/cat/001.jpg``) and ``group`` (any
    name); group ids follow the sorted group names. Every image must be listed.

    Args:
        root: The dataset folder.
        train_dir: Subfolder with the training tree.
        val_dir: Subfolder with the validation tree, used when it exists.
        test_dir: Subfolder with the test tree, used when it exists.
        groups_csv: CSV mapping image paths to group names (a path, or a name inside
            ``root``); None yields no groups.
        grayscale: Decode to 1 channel instead of RGB.
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Share carved for validation when ``val_dir`` is missing: of the training
            tree, or of all images when ``root`` is the class tree.
        test_fraction: Share carved for testing when ``test_dir`` is missing.
        seed: Seeds the splits, the subsets and the training shuffle.
        image_size: Resize the shorter side to this and keep the central square; None keeps
            the native size (all images must then share it).
        limit_train: Keep a seeded, stratified subset of this many training images (the
            validation split shrinks in proportion); None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.

    Raises:
        ConfigError: Bad arguments (at construction); a missing folder, an unreadable image,
            or images missing from ``groups_csv`` (at ``setup``).
    """

    dataset_name = "imagefolder"

    def __init__(
        self,
        *,
        root: str,
        train_dir: str = "train",
        val_dir: str = "val",
        test_dir: str = "test",
        groups_csv: str | None = None,
        grayscale: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
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
            sensitive_attribute=None if groups_csv is None else "group",
        )
        check_split_fractions(val_fraction, test_fraction)
        dirs = {"train_dir": train_dir, "val_dir": val_dir, "test_dir": test_dir}
        for name, value in dirs.items():
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"`{name}` must be a folder name, got {value!r}")
        resolved = [Path(value).as_posix().strip("/") for value in dirs.values()]
        if len(set(resolved)) < len(resolved):
            raise ConfigError(
                f"`train_dir`, `val_dir` and `test_dir` must name different folders (each split "
                f"its own images), got {dirs}"
            )
        self.root = check_root(root)
        self.train_dir, self.val_dir, self.test_dir = train_dir, val_dir, test_dir
        self.groups_csv = groups_csv
        self.grayscale = bool(grayscale)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    @override
    def _load(self, generator: torch.Generator) -> LoadedData:
        root = Path(self.root)
        if not root.is_dir():
            raise ConfigError(
                f"`root`={self.root!r} is not a folder; expected {self.root}/{self.train_dir}/"
                f"<class>/<images> (and optionally {self.test_dir}/), or {self.root}/<class>/"
                "<images>"
            )
        train_tree = root / self.train_dir
        if not train_tree.is_dir():
            train_tree = root
        trees: list[Path | None] = [train_tree]
        for name in (self.val_dir, self.test_dir):
            sub = root / name
            trees.append(sub if train_tree is not root and sub.is_dir() else None)

        paths, labels_list, class_names = scan_class_folders(train_tree)
        owner = [0] * len(paths)
        for position, tree in enumerate(trees[1:], start=1):
            if tree is not None:
                more, more_labels, _ = scan_class_folders(tree, class_names)
                paths += more
                labels_list += more_labels
                owner += [position] * len(more)
        labels = torch.as_tensor(labels_list, dtype=torch.long)
        group_names, groups = self._read_groups(root, paths)
        strata = labels if groups is None else labels * len(group_names or [1]) + groups

        where = torch.as_tensor(owner)
        fractions = [self.val_fraction if trees[1] is None else 0.0]
        fractions.append(self.test_fraction if trees[2] is None else 0.0)
        train, val, test = stratified_split(
            strata, fractions, generator, indices=torch.nonzero(where == 0).flatten()
        )
        if trees[1] is not None:
            val = torch.nonzero(where == 1).flatten()
        if trees[2] is not None:
            test = torch.nonzero(where == 2).flatten()
        train, val, test = self._limit(strata, train, val, test, generator)
        train_split, val_split, test_split = select_and_decode(
            paths,
            labels,
            groups,
            (train, val, test),
            self.image_size,
            "L" if self.grayscale else "RGB",
        )
        return LoadedData(
            train_split, val_split, test_split, class_names=class_names, group_names=group_names
        )

    def _read_groups(
        self, root: Path, paths: list[str]
    ) -> tuple[list[str] | None, torch.Tensor | None]:
        if self.groups_csv is None:
            return None, None
        csv_path = Path(self.groups_csv)
        if not csv_path.is_file() and (root / csv_path).is_file():
            csv_path = root / csv_path
        if not csv_path.is_file():
            raise ConfigError(
                f"`groups_csv`={self.groups_csv!r} not found (looked in the working directory "
                f"and in {self.root!r}); expected a CSV with columns `path,group`"
            )
        mapping = _read_group_csv(csv_path)
        keys = [Path(os.path.relpath(p, root)).as_posix() for p in paths]
        missing = [k for k in keys if k not in mapping]
        if missing:
            raise ConfigError(
                f"{len(missing)} of {len(keys)} images under {self.root!r} are missing from "
                f"`groups_csv`={str(csv_path)!r}, e.g. {missing[:5]}; list every image's path "
                "relative to `root` with its group"
            )
        names = sorted({mapping[k] for k in keys})
        index = {name: i for i, name in enumerate(names)}
        return names, torch.as_tensor([index[mapping[k]] for k in keys], dtype=torch.long)

    @override
    def describe(self) -> dict[str, Any]:
        """:meth:`ImageDataModule.describe` plus ``root`` and ``groups_csv``."""
        out = super().describe()
        out.update(root=self.root, groups_csv=self.groups_csv)
        return out


def _read_group_csv(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8-sig") as f:  # (Excel writes a byte-order mark)
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        if "path" not in columns or "group" not in columns:
            raise ConfigError(
                f"`groups_csv`={str(path)!r} must have the columns `path` and `group`, found "
                f"{list(columns)}"
            )
        mapping: dict[str, str] = {}
        for line, row in enumerate(reader, start=2):
            key = PurePosixPath(row["path"].strip().replace("\\", "/")).as_posix()
            group = (row["group"] or "").strip()
            if not group:
                raise ConfigError(f"`groups_csv` line {line}: empty `group` for {key!r}")
            if mapping.setdefault(key, group) != group:
                raise ConfigError(
                    f"`groups_csv` line {line}: {key!r} is listed with groups "
                    f"{mapping[key]!r} and {group!r}"
                )
        return mapping
