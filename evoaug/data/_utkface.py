"""UTKFace: face crops named ``<age>_<gender>_<race>_<date>.jpg``; a fairness benchmark."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

import torch
from pytorch_lightning.utilities import rank_zero_only
from typing_extensions import override

from evoaug.data._base import ImageDataModule
from evoaug.data._checks import check_choice, check_root, check_split_fractions
from evoaug.data._images import find_images, select_and_decode
from evoaug.data._memory import LoadedData
from evoaug.data._split import stratified_split
from evoaug.exceptions import ConfigError

__all__ = ["UTKFaceDataModule"]

_log = logging.getLogger(__name__)

FIELDS = ("gender", "race", "age_bucket")
GENDER_NAMES = ["Male", "Female"]  # 0 = male, 1 = female
RACE_NAMES = ["White", "Black", "Asian", "Indian", "Others"]
# (name, first age, last age); the last bucket is open-ended.
AGE_BUCKETS = (("0-19", 0, 19), ("20-39", 20, 39), ("40-59", 40, 59), ("60+", 60, 10**6))
# age_gender_race_date, then any extension(s): 25_0_2_20170116174525125.jpg.chip.jpg
_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\D")


def _age_bucket(age: int) -> int:
    return next(i for i, (_, low, high) in enumerate(AGE_BUCKETS) if low <= age <= high)


def parse_utkface_name(name: str) -> dict[str, int] | None:
    """``{"age", "gender", "race", "age_bucket"}`` from a UTKFace file name, or None.

    Example:
        >>> parse_utkface_name("25_1_2_20170116174525125.jpg.chip.jpg")
        {'age': 25, 'gender': 1, 'race': 2, 'age_bucket': 1}
        >>> parse_utkface_name("61_1_20170109142408075.jpg.chip.jpg") is None  # no race field
        True
    """
    match = _NAME.match(name)
    if match is None:
        return None
    age, gender, race = (int(match.group(i)) for i in (1, 2, 3))
    return {"age": age, "gender": gender, "race": race, "age_bucket": _age_bucket(age)}


class UTKFaceDataModule(ImageDataModule):
    """UTKFace (Zhang, Song & Qi 2017): face images labelled by age, gender and race.

    Reads every image under ``root`` (recursively) named ``<age>_<gender>_<race>_<date>.jpg``
    (``.jpg.chip.jpg`` for the cropped release). Gender: 0 Male, 1 Female. Race: 0 White,
    1 Black, 2 Asian, 3 Indian, 4 Others. Age buckets: 0-19, 20-39, 40-59, 60+. Image files
    whose names do not parse (e.g. two files of ``crop_part1`` lack the race field) are
    skipped, listed in :attr:`skipped_files` and reported in a warning log line with their
    count and examples. The train/val/test split is seeded and stratified by target and
    sensitive attribute. Batches are ``(images, labels, groups)``, or ``(images, labels)`` when
    ``sensitive`` is None.

    Args:
        root: Folder with the images (searched recursively).
        target: Attribute to predict.
        sensitive: Attribute that defines the groups; None yields no groups.
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Share of all images in the validation split.
        test_fraction: Share of all images in the test split.
        seed: Seeds the split, the subsets and the training shuffle.
        image_size: Resize the shorter side to this and keep the central square.
        limit_train: Keep a seeded, stratified subset of this many training images (the
            validation split shrinks in proportion); None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.

    Attributes:
        skipped_files: After ``setup``, the paths (relative to ``root``) of the image files
            whose names did not parse.

    Raises:
        ConfigError: Bad arguments (at construction); a missing folder or no parseable images
            (at ``setup``).
    """

    dataset_name = "utkface"

    def __init__(
        self,
        *,
        root: str = "data/utkface",
        target: Literal["gender", "race", "age_bucket"] = "gender",
        sensitive: Literal["race", "gender", "age_bucket"] | None = "race",
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        image_size: int = 64,
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
            sensitive_attribute=sensitive,
        )
        if image_size is None:
            raise ConfigError("`image_size` must be an int >= 1 for utkface, got None")
        check_choice("target", target, FIELDS)
        check_choice("sensitive", sensitive, (*FIELDS, None))
        if sensitive == target:
            raise ConfigError(
                f"`sensitive` must differ from `target` (or be None), got both {target!r}"
            )
        check_split_fractions(val_fraction, test_fraction)
        self.root = check_root(root)
        self.target = target
        self.sensitive = sensitive
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.skipped_files: list[str] = []

    @staticmethod
    def names_of(field: str) -> list[str]:
        """The class names of ``"gender"``, ``"race"`` or ``"age_bucket"``."""
        check_choice("field", field, FIELDS)
        if field == "gender":
            return list(GENDER_NAMES)
        if field == "race":
            return list(RACE_NAMES)
        return [name for name, _, _ in AGE_BUCKETS]

    @override
    def _load(self, generator: torch.Generator) -> LoadedData:
        root = Path(self.root)
        if not root.is_dir():
            raise ConfigError(
                f"`root`={self.root!r} is not a folder; expected a folder of UTKFace images "
                "named <age>_<gender>_<race>_<date>.jpg (e.g. the extracted `crop_part1/` or "
                "`UTKFace/` folder from https://susanqq.github.io/UTKFace/)"
            )
        paths, records, skipped = [], [], []
        for path in find_images(root):
            record = parse_utkface_name(os.path.basename(path))
            if record is None:
                skipped.append(Path(os.path.relpath(path, root)).as_posix())
            else:
                paths.append(path)
                records.append(record)
        self.skipped_files = skipped
        if skipped:
            _report_skipped(self.root, skipped, len(paths) + len(skipped))
        if not paths:
            raise ConfigError(
                f"no image under `root`={self.root!r} is named <age>_<gender>_<race>_<date>.jpg"
                f" ({len(skipped)} image files did not parse, e.g. {skipped[:3]})"
            )
        labels = torch.as_tensor([r[self.target] for r in records], dtype=torch.long)
        groups = None
        strata = labels
        group_names = None
        if self.sensitive is not None:
            group_names = self.names_of(self.sensitive)
            groups = torch.as_tensor([r[self.sensitive] for r in records], dtype=torch.long)
            strata = labels * len(group_names) + groups
        train, val, test = stratified_split(
            strata, (self.val_fraction, self.test_fraction), generator
        )
        train, val, test = self._limit(strata, train, val, test, generator)
        train_split, val_split, test_split = select_and_decode(
            paths, labels, groups, (train, val, test), self.image_size, "RGB"
        )
        return LoadedData(
            train_split,
            val_split,
            test_split,
            class_names=self.names_of(self.target),
            group_names=group_names,
        )

    @override
    def describe(self) -> dict[str, Any]:
        """:meth:`ImageDataModule.describe` plus ``target``, ``root`` and the skipped files."""
        out = super().describe()
        out.update(
            root=self.root,
            target=self.target,
            skipped_count=len(self.skipped_files),
            skipped_files=list(self.skipped_files[:20]),
        )
        return out


@rank_zero_only
def _report_skipped(root: str, skipped: list[str], total: int) -> None:
    _log.warning(
        "utkface: skipped %d of %d image files under %r whose names do not parse as "
        "<age>_<gender>_<race>_<date>.jpg, e.g. %s (see `skipped_files`)",
        len(skipped),
        total,
        root,
        ", ".join(skipped[:5]),
    )
