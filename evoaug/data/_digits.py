"""scikit-learn's bundled digits (no download, ever) and a fairness benchmark built from them."""

from __future__ import annotations

from typing import Any, Literal

import torch
from typing_extensions import override

from evoaug._demo import load_digits_images
from evoaug.data._base import ImageDataModule
from evoaug.data._checks import check_choice, check_fraction, check_split_fractions
from evoaug.data._memory import LoadedData, Split
from evoaug.data._split import stratified_split, stratified_subset
from evoaug.exceptions import ConfigError

__all__ = ["ColoredDigitsDataModule", "DigitsDataModule"]

DIGIT_NAMES = [str(d) for d in range(10)]
ATTRIBUTES = ("tint", "invert", "texture")
TINT_COLOR = (1.0, 0.35, 0.0)  # orange: the "tint" minority draws its digit in this colour
TEXTURE_STRENGTH = 0.5  # brightness of the "texture" stripes on the black background


class DigitsDataModule(ImageDataModule):
    """scikit-learn's 1,797 handwritten 8x8 digits, resized; the embedded default dataset.

    Images are grayscale ``[1, image_size, image_size]`` (bilinear resize of intensities
    0..16 scaled to [0, 1]); batches are ``(images, labels)``. The train/val/test split is
    stratified by class and seeded (70/15/15 by default). Nothing is ever downloaded: the data
    ships inside scikit-learn.

    Args:
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Share of all images in the validation split.
        test_fraction: Share of all images in the test split.
        seed: Seeds the split, the subsets and the training shuffle.
        image_size: Side of the resized images; None keeps 8x8.
        limit_train: Keep a seeded, stratified subset of this many training images (the
            validation split shrinks in proportion); None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images.

    Raises:
        ConfigError: An argument is out of range; the message names it.

    Example:
        >>> from evoaug.data import DigitsDataModule
        >>> dm = DigitsDataModule(batch_size=16, image_size=16)
        >>> dm.setup("fit")
        >>> images, labels = next(iter(dm.train_dataloader()))
        >>> images.shape, images.dtype, labels.dtype
        (torch.Size([16, 1, 16, 16]), torch.float32, torch.int64)
        >>> dm.num_classes, dm.describe()["sizes"]
        (10, {'train': 1257, 'val': 270, 'test': 270})
    """

    dataset_name = "digits"

    def __init__(
        self,
        *,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        image_size: int | None = 32,
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
        check_split_fractions(val_fraction, test_fraction)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def _split_digits(self, generator: torch.Generator) -> tuple[Split, Split, Split]:
        images, labels = load_digits_images(self.image_size or 8)
        train, val, test = stratified_split(
            labels, (self.val_fraction, self.test_fraction), generator
        )
        train, val, test = self._limit(labels, train, val, test, generator)
        full = Split(images.contiguous(), labels)
        return full.select(train), full.select(val), full.select(test)

    @override
    def _load(self, generator: torch.Generator) -> LoadedData:
        train, val, test = self._split_digits(generator)
        return LoadedData(train, val, test, class_names=list(DIGIT_NAMES))


class ColoredDigitsDataModule(DigitsDataModule):
    """A fairness benchmark from the real digits: a rare, label-correlated visual minority.

    Every image becomes RGB (white digit on black). Images of the minority group (group 1) carry
    a visual attribute; the majority (group 0) does not. In TRAINING the minority is rare and
    correlated with the labels; in VALIDATION and TEST it is as common as the majority, so a model
    that learned the shortcut "minority look => minority classes", or never learned to read the
    minority's digits, shows a low worst-group accuracy. Batches are ``(images, labels, groups)``
    with ``group_names == ["majority", "minority"]`` and ``sensitive_attribute == attribute``.

    Args:
        attribute: What marks the minority. ``"tint"``: the digit is drawn in orange
            ``TINT_COLOR`` instead of white. ``"invert"``: intensities are inverted (black digit
            on white). ``"texture"``: diagonal stripes of brightness ``TEXTURE_STRENGTH``, each
            ``image_size // 8`` pixels wide, are added to the background (the digit is
            unchanged).
        minority_fraction: Share of TRAINING images in the minority group, in [0, 1]; the count
            is ``round(minority_fraction * n_train)``.
        correlation: Share of the minority TRAINING images whose label is in
            ``minority_classes``, in [0, 1]; the others have labels outside it. Equal to
            ``len(minority_classes) / 10`` means no correlation with the labels; 1.0 means the
            minority never shows the other classes in training.
        minority_classes: The digits the minority is correlated with (distinct, 0..9).
        batch_size: Samples per batch.
        num_workers: DataLoader worker processes.
        val_fraction: Share of all digits drawn for the validation split.
        test_fraction: Share of all digits drawn for the test split.
        seed: Seeds the split, the choice of minority images, the subsets and the shuffle.
        image_size: Side of the resized images; None keeps 8x8.
        limit_train: Keep a seeded, stratified subset of this many training images before the
            groups are assigned; None keeps all.
        limit_test: Keep a seeded, stratified subset of this many test images before balancing.

    Validation and test are balanced exactly: every class keeps the same number of images (the
    smallest class count in that split, rounded down to even; a few surplus images are dropped),
    half of each class in each group. Each image appears once, in one group.

    Raises:
        ConfigError: An argument is out of range, or the training split has too few images in
            (or outside) ``minority_classes`` for the requested minority counts.

    Example:
        >>> from evoaug.data import ColoredDigitsDataModule
        >>> dm = ColoredDigitsDataModule(attribute="tint", image_size=16)
        >>> images, labels, groups = next(iter(dm.test_dataloader()))
        >>> images.shape, dm.group_names, dm.sensitive_attribute
        (torch.Size([64, 3, 16, 16]), ['majority', 'minority'], 'tint')
    """

    dataset_name = "colored-digits"

    def __init__(
        self,
        *,
        attribute: Literal["tint", "invert", "texture"] = "invert",
        minority_fraction: float = 0.05,
        correlation: float = 0.8,
        minority_classes: tuple[int, ...] = (0, 1, 2, 3, 4),
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        seed: int = 0,
        image_size: int | None = 32,
        limit_train: int | None = None,
        limit_test: int | None = None,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            num_workers=num_workers,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            seed=seed,
            image_size=image_size,
            limit_train=limit_train,
            limit_test=limit_test,
        )
        check_choice("attribute", attribute, ATTRIBUTES)
        check_fraction("minority_fraction", minority_fraction, allow_zero=True, allow_one=True)
        check_fraction("correlation", correlation, allow_zero=True, allow_one=True)
        classes = (
            tuple(minority_classes)
            if isinstance(minority_classes, (tuple, list, range))
            else ()  # not a sequence of digits: refused below
        )
        if (
            not classes
            or len(set(classes)) != len(classes)
            or any(
                isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 9 for c in classes
            )
        ):
            raise ConfigError(
                "`minority_classes` must be distinct digits in 0..9 (at least one), got "
                f"{minority_classes!r}"
            )
        self.attribute = attribute
        self.minority_fraction = float(minority_fraction)
        self.correlation = float(correlation)
        self.minority_classes = classes
        self.sensitive_attribute = attribute

    @override
    def _load(self, generator: torch.Generator) -> LoadedData:
        train, val, test = self._split_digits(generator)
        return LoadedData(
            self._colorize(train, self._training_groups(train.labels, generator)),
            self._colorize(*_balanced(val.labels, val, generator)),
            self._colorize(*_balanced(test.labels, test, generator)),
            class_names=list(DIGIT_NAMES),
            group_names=["majority", "minority"],
        )

    def _training_groups(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n_minority = round(self.minority_fraction * len(labels))
        n_correlated = round(self.correlation * n_minority)
        inside = torch.isin(labels, torch.tensor(self.minority_classes))
        groups = torch.zeros(len(labels), dtype=torch.long)
        for mask, count, where in (
            (inside, n_correlated, "in"),
            (~inside, n_minority - n_correlated, "outside"),
        ):
            candidates = torch.nonzero(mask).flatten()
            if count > len(candidates):
                raise ConfigError(
                    f"`minority_fraction`={self.minority_fraction} with `correlation`="
                    f"{self.correlation} needs {count} minority training images with labels "
                    f"{where} `minority_classes`={list(self.minority_classes)}, but the training "
                    f"split has only {len(candidates)}; lower `minority_fraction` or change "
                    "`correlation`"
                )
            groups[stratified_subset(labels, candidates, count, generator)] = 1
        return groups

    def _colorize(self, split: Split, groups: torch.Tensor) -> Split:
        rgb = split.images.expand(-1, 3, -1, -1).clone()
        minority = groups == 1
        chosen = rgb[minority]
        if self.attribute == "tint":
            chosen = chosen * torch.tensor(TINT_COLOR).view(1, 3, 1, 1)
        elif self.attribute == "invert":
            chosen = 1.0 - chosen
        else:
            side = rgb.shape[-1]
            width = max(1, side // 8)
            rows = torch.arange(side).view(side, 1)
            cols = torch.arange(side).view(1, side)
            stripes = (((rows + cols) // width) % 2).float() * TEXTURE_STRENGTH
            chosen = chosen + (1.0 - chosen) * stripes
        rgb[minority] = chosen.clamp(0.0, 1.0)
        return Split(rgb, split.labels, groups)

    @override
    def describe(self) -> dict[str, Any]:
        """:meth:`ImageDataModule.describe` plus the benchmark's parameters and realized stats.

        Returns:
            The base description, plus ``attribute``, ``minority_fraction``, ``correlation``,
            ``minority_classes`` and the realized ``train_minority_fraction`` and
            ``train_minority_correlation``.
        """
        out = super().describe()
        train = self.data.train
        groups = train.groups if train.groups is not None else torch.zeros_like(train.labels)
        minority = groups == 1
        n_minority = int(minority.sum())
        inside = torch.isin(train.labels[minority], torch.tensor(self.minority_classes))
        out.update(
            attribute=self.attribute,
            minority_fraction=self.minority_fraction,
            correlation=self.correlation,
            minority_classes=list(self.minority_classes),
            train_minority_fraction=n_minority / max(len(train), 1),
            train_minority_correlation=(int(inside.sum()) / n_minority) if n_minority else None,
        )
        return out


def _balanced(
    labels: torch.Tensor, split: Split, generator: torch.Generator
) -> tuple[Split, torch.Tensor]:
    """Equal images per class (even count), half of each class in each group."""
    classes = torch.unique(labels).tolist()
    members = [torch.nonzero(labels == c).flatten() for c in classes]
    per_class = min(len(m) for m in members) // 2 * 2
    keep, groups = [], []
    for m in members:
        chosen = m[torch.randperm(len(m), generator=generator)[:per_class]]
        keep.append(chosen)
        groups.append(torch.arange(per_class) % 2)
    order = torch.cat(keep)
    sort = torch.argsort(order)
    return split.select(order[sort]), torch.cat(groups)[sort].long()
