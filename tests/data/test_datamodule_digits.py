"""Digits and colored-digits: the contract, seeded splits, and the fairness benchmark's stats."""

from __future__ import annotations

import pytest
import torch

from evoaug import ConfigError
from evoaug.data import ColoredDigitsDataModule, DigitsDataModule


def test_digits_contract(tools):
    dm = DigitsDataModule(image_size=16, batch_size=32)
    description = tools.check_contract(dm, num_classes=10, channels=1, size=16, grouped=False)
    assert description["dataset_name"] == "digits"
    assert description["sizes"] == {"train": 1257, "val": 270, "test": 270}
    assert dm.class_names == [str(d) for d in range(10)]


def test_digits_native_size_and_limits():
    dm = DigitsDataModule(image_size=None, limit_train=100, limit_test=50)
    assert dm.image_shape == (1, 8, 8)
    sizes = dm.describe()["sizes"]
    assert sizes["train"] == 100 and sizes["test"] == 50
    assert sizes["val"] == round(100 * 270 / 1257)  # val shrinks in proportion
    # stratified: every class is present in the 100 training images
    assert torch.bincount(dm.data.train.labels, minlength=10).min() >= 9


def test_digits_split_is_stratified_and_disjoint():
    dm = DigitsDataModule(image_size=8)
    parts = [dm.data.train, dm.data.val, dm.data.test]
    assert sum(len(p) for p in parts) == 1797
    flat = torch.cat([p.images.flatten(1) for p in parts])
    assert len(torch.unique(flat, dim=0)) >= 1797 - 20  # (a few digits are exact duplicates)
    counts = torch.bincount(dm.data.test.labels, minlength=10)
    assert int(counts.max() - counts.min()) <= 2


def test_digits_split_reproducible_for_a_seed_and_different_for_another(tools):
    a, b, c = (DigitsDataModule(image_size=8, seed=s) for s in (3, 3, 4))
    assert tools.same_split(a, b)
    assert not tools.same_split(a, c)


def test_digits_train_shuffle_is_seeded():
    def first_labels(seed: int) -> list[int]:
        dm = DigitsDataModule(image_size=8, seed=seed, batch_size=16)
        return next(iter(dm.train_dataloader()))[1].tolist()

    assert first_labels(0) == first_labels(0)
    assert first_labels(0) != first_labels(1)
    dm = DigitsDataModule(image_size=8, batch_size=16)
    first = [next(iter(dm.val_dataloader()))[1].tolist() for _ in range(2)]
    assert first[0] == first[1] == dm.data.val.labels[:16].tolist()  # val is not shuffled


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, r"`batch_size` must be an int >= 1, got 0"),
        ({"num_workers": -1}, r"`num_workers`"),
        ({"val_fraction": 1.5}, r"`val_fraction` must be a number in \(0, 1\), got 1.5"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, r"`val_fraction` \+ `test_fraction`"),
        ({"image_size": 0}, r"`image_size` must be an int >= 1 or None"),
        ({"limit_train": 0}, r"`limit_train`"),
        ({"seed": 1.5}, r"`seed`"),
    ],
)
def test_digits_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DigitsDataModule(**kwargs)


def test_colored_digits_contract(tools):
    dm = ColoredDigitsDataModule(image_size=16)
    description = tools.check_contract(dm, num_classes=10, channels=3, size=16, grouped=True)
    assert dm.group_names == ["majority", "minority"]
    assert dm.sensitive_attribute == "invert" == description["sensitive_attribute"]
    assert description["minority_classes"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("fraction", "correlation", "classes"),
    [(0.05, 0.8, (0, 1, 2, 3, 4)), (0.1, 0.5, (7,)), (0.1, 1.0, (2, 3)), (0.0, 0.8, (0,))],
)
def test_colored_digits_group_statistics_match_parameters(fraction, correlation, classes):
    dm = ColoredDigitsDataModule(
        image_size=8, minority_fraction=fraction, correlation=correlation, minority_classes=classes
    )
    train = dm.data.train
    assert train.groups is not None
    minority = train.groups == 1
    n_minority = int(minority.sum())
    # Training: counts are exactly round(fraction * n) and round(correlation * n_minority).
    assert n_minority == round(fraction * len(train))
    assert abs(n_minority / len(train) - fraction) <= 1 / len(train)
    inside = torch.isin(train.labels[minority], torch.tensor(classes))
    assert int(inside.sum()) == round(correlation * n_minority)
    description = dm.describe()
    assert description["train_minority_fraction"] == pytest.approx(fraction, abs=1e-3)
    if n_minority:
        assert description["train_minority_correlation"] == pytest.approx(
            correlation, abs=1 / n_minority
        )
    # Validation and test: 50/50 groups, uniform classes, every (class, group) cell equal.
    for split in (dm.data.val, dm.data.test):
        assert split.groups is not None
        cells = torch.bincount(split.labels * 2 + split.groups, minlength=20)
        assert int(cells.min()) == int(cells.max()) > 0
        assert description["group_counts"]["test"][0] == description["group_counts"]["test"][1]


@pytest.mark.parametrize("attribute", ["tint", "invert", "texture"])
def test_colored_digits_attribute_marks_only_the_minority(attribute):
    dm = ColoredDigitsDataModule(attribute=attribute, image_size=16)
    test = dm.data.test
    assert test.groups is not None
    majority, minority = test.images[test.groups == 0], test.images[test.groups == 1]
    # The majority is a grey digit on black: equal channels, black corners.
    assert torch.equal(majority[:, 0], majority[:, 1]) and torch.equal(
        majority[:, 1], majority[:, 2]
    )
    assert float(majority[:, :, 0, 0].max()) < 0.05
    if attribute == "tint":
        assert float((minority[:, 0] - minority[:, 2]).amax(dim=(1, 2)).min()) > 0.3  # coloured
    elif attribute == "invert":
        assert float(minority[:, :, 0, 0].min()) > 0.95  # white background
    else:
        background = minority.mean(dim=1) < 0.6
        assert float(minority.mean(dim=1)[background].max()) > 0.3  # stripes on the background
    assert dm.describe()["attribute"] == attribute


def test_colored_digits_reproducible(tools):
    a, b = ColoredDigitsDataModule(image_size=8), ColoredDigitsDataModule(image_size=8)
    c = ColoredDigitsDataModule(image_size=8, seed=1)
    assert tools.same_split(a, b) and torch.equal(a.data.train.groups, b.data.train.groups)
    assert not tools.same_split(a, c)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"attribute": "glow"},
            r"`attribute` must be one of \['tint', 'invert', 'texture'\], got 'glow'",
        ),
        ({"minority_fraction": 1.5}, r"`minority_fraction` must be a number in \[0, 1\]"),
        ({"correlation": -0.1}, r"`correlation`"),
        ({"minority_classes": (11,)}, r"`minority_classes` must be distinct digits"),
        ({"minority_classes": ()}, r"`minority_classes`"),
        ({"minority_classes": (1, 1)}, r"`minority_classes`"),
    ],
)
def test_colored_digits_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ColoredDigitsDataModule(**kwargs)


def test_colored_digits_infeasible_minority_is_explained():
    dm = ColoredDigitsDataModule(minority_fraction=1.0, correlation=0.8, image_size=8)
    with pytest.raises(ConfigError, match=r"needs \d+ minority training images with labels in"):
        dm.setup()


@pytest.mark.parametrize(
    ("cls", "kwargs", "empty"),
    [
        (ColoredDigitsDataModule, {"limit_train": 50}, "val"),
        (ColoredDigitsDataModule, {"limit_test": 15}, "test"),
        (ColoredDigitsDataModule, {"val_fraction": 0.01}, "val"),
        (DigitsDataModule, {"val_fraction": 0.0001}, "val"),
    ],
)
def test_an_empty_split_is_refused(cls, kwargs, empty):
    with pytest.raises(ConfigError, match=rf"the {empty} split came out empty .*raise"):
        cls(image_size=8, **kwargs).setup()


def test_colored_digits_minority_classes_must_be_digits():
    with pytest.raises(ConfigError, match=r"`minority_classes` must be distinct digits .* got 3"):
        ColoredDigitsDataModule(minority_classes=3)  # type: ignore[arg-type]
