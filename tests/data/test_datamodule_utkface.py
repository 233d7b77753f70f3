"""UTKFaceDataModule on generated files named like UTKFace, with malformed names among them."""

from __future__ import annotations

import logging

import pytest
import torch

from evoaug import ConfigError
from evoaug.data import UTKFaceDataModule, parse_utkface_name


def test_utkface_contract_and_skipped_files_are_reported(tmp_path, tools, caplog):
    malformed = tools.write_utkface(tmp_path / "crop_part1")
    dm = UTKFaceDataModule(root=str(tmp_path), image_size=8, batch_size=8)
    with caplog.at_level(logging.WARNING, logger="evoaug.data"):
        description = tools.check_contract(dm, num_classes=2, channels=3, size=8, grouped=True)
    assert dm.class_names == ["Male", "Female"]
    assert dm.group_names == ["White", "Black", "Asian", "Indian", "Others"]
    assert sorted(dm.skipped_files) == sorted(f"crop_part1/{name}" for name in malformed)
    assert description["skipped_count"] == 3  # README.txt is not an image: not counted
    assert sum(description["sizes"].values()) == 120
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "skipped 3 of 123 image files" in message and "61_1_20170109142408075" in message


@pytest.mark.parametrize(
    ("target", "sensitive", "classes", "groups"),
    [("race", "gender", 5, ["Male", "Female"]), ("age_bucket", None, 4, None)],
)
def test_utkface_target_and_sensitive_are_configurable(
    tmp_path, tools, target, sensitive, classes, groups
):
    tools.write_utkface(tmp_path)
    dm = UTKFaceDataModule(root=str(tmp_path), target=target, sensitive=sensitive, image_size=8)
    tools.check_contract(dm, num_classes=classes, channels=3, size=8, grouped=groups is not None)
    assert dm.group_names == groups


def test_utkface_labels_come_from_the_names(tmp_path, tools):
    tools.write_utkface(tmp_path)
    dm = UTKFaceDataModule(root=str(tmp_path), target="race", sensitive="gender", image_size=8)
    split = dm.data.train
    assert split.groups is not None
    # write_utkface: gender = i % 2, race = (i // 2) % 5, so race and gender are independent
    assert set(torch.unique(split.labels * 2 + split.groups).tolist()) == set(range(10))


def test_utkface_stratified_and_seeded(tmp_path, tools):
    tools.write_utkface(tmp_path)
    a = UTKFaceDataModule(root=str(tmp_path), image_size=8)
    b = UTKFaceDataModule(root=str(tmp_path), image_size=8)
    c = UTKFaceDataModule(root=str(tmp_path), image_size=8, seed=2)
    assert tools.same_split(a, b) and not tools.same_split(a, c)
    test = a.data.test
    assert test.groups is not None
    cells = torch.bincount(test.labels * 5 + test.groups, minlength=10)
    assert int(cells.min()) >= 2  # every (gender, race) cell is in the test split


def test_parse_utkface_name():
    assert parse_utkface_name("1_0_0_20161219140623097.jpg.chip.jpg") == {
        "age": 1, "gender": 0, "race": 0, "age_bucket": 0,
    }  # fmt: skip
    assert parse_utkface_name("70_1_4_20170117.jpg")["age_bucket"] == 3
    for bad in ("61_1_20170109142408075.jpg.chip.jpg", "20_2_0_2017.jpg", "x_0_0_1.jpg"):
        assert parse_utkface_name(bad) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"target": "age"},
            r"`target` must be one of \['gender', 'race', 'age_bucket'\], got 'age'",
        ),
        ({"sensitive": "hair"}, r"`sensitive` must be one of"),
        ({"target": "race", "sensitive": "race"}, r"`sensitive` must differ from `target`"),
        ({"image_size": None}, r"`image_size` must be an int >= 1 for utkface"),
        ({"test_fraction": 0.95}, r"`val_fraction` \+ `test_fraction` must be < 1"),
    ],
)
def test_utkface_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        UTKFaceDataModule(**kwargs)


def test_utkface_missing_or_unparseable_folder(tmp_path, tools):
    with pytest.raises(ConfigError, match=r"is not a folder; expected a folder of UTKFace images"):
        UTKFaceDataModule(root=str(tmp_path / "none")).setup()
    tools.save_image(tmp_path / "face.jpg", torch.zeros(8, 8, 3, dtype=torch.uint8).numpy())
    with pytest.raises(ConfigError, match=r"no image under .* is named <age>_<gender>"):
        UTKFaceDataModule(root=str(tmp_path)).setup()
