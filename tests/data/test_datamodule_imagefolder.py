"""ImageFolderDataModule on generated class-per-folder trees of JPEGs and PNGs."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from evoaug import ConfigError
from evoaug.data import ImageFolderDataModule


def _groups_csv(path, rel_paths, skip=()):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group"])
        for i, rel in enumerate(rel_paths):
            if rel not in skip:
                writer.writerow([rel, "light" if i % 3 else "dark"])


def test_imagefolder_train_test_tree(tmp_path, tools):
    tools.write_image_tree(tmp_path)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=12, batch_size=4)
    description = tools.check_contract(dm, num_classes=3, channels=3, size=12, grouped=False)
    assert dm.class_names == ["cat", "dog", "frog"]
    assert description["sizes"] == {"train": 32, "val": 4, "test": 12}


def test_imagefolder_native_size_and_grayscale(tmp_path, tools):
    tools.write_image_tree(tmp_path, size=(10, 10))
    dm = ImageFolderDataModule(root=str(tmp_path), grayscale=True)
    tools.check_contract(dm, num_classes=3, channels=1, size=10, grouped=False)


def test_imagefolder_pixels_survive_png_decoding(tmp_path, tools):
    array = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    for split in ("train", "test"):
        for name in ("a", "b"):
            for i in range(3):
                tools.save_image(tmp_path / split / name / f"{i}.png", array)
    dm = ImageFolderDataModule(root=str(tmp_path), val_fraction=0.2)
    image = dm.dataset("test")[0][0]
    assert torch.allclose(image, torch.as_tensor(array).permute(2, 0, 1).float() / 255)


def test_imagefolder_flat_tree_is_split(tmp_path, tools):
    tools.write_image_tree(tmp_path / "all", n_test=0)
    flat = tmp_path / "all" / "train"
    dm = ImageFolderDataModule(root=str(flat), image_size=8, val_fraction=0.25, test_fraction=0.25)
    assert dm.describe()["sizes"] == {"train": 18, "val": 9, "test": 9}
    assert dm.class_names == ["cat", "dog", "frog"]


def test_imagefolder_uses_val_dir_when_present(tmp_path, tools):
    tools.write_image_tree(tmp_path, n_test=2)
    (tmp_path / "test").rename(tmp_path / "val")
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, test_fraction=0.25)
    assert dm.describe()["sizes"] == {"train": 27, "val": 6, "test": 9}


def test_imagefolder_groups_from_csv(tmp_path, tools):
    rel = tools.write_image_tree(tmp_path)
    _groups_csv(tmp_path / "groups.csv", rel)
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, groups_csv="groups.csv")
    description = tools.check_contract(dm, num_classes=3, channels=3, size=8, grouped=True)
    assert dm.group_names == ["dark", "light"] and dm.sensitive_attribute == "group"
    assert sum(description["group_counts"]["test"]) == 12
    assert description["group_counts"]["test"] == [4, 8]  # every third test file is "dark"


def test_imagefolder_files_missing_from_csv_are_listed(tmp_path, tools):
    rel = tools.write_image_tree(tmp_path)
    csv_path = tmp_path / "g.csv"
    _groups_csv(csv_path, rel, skip=rel[:2])
    dm = ImageFolderDataModule(root=str(tmp_path), groups_csv=str(csv_path), image_size=8)
    with pytest.raises(ConfigError, match=r"2 of 48 images .* missing from `groups_csv`.*0_0.jpg"):
        dm.setup()


def test_imagefolder_csv_errors(tmp_path, tools):
    tools.write_image_tree(tmp_path)
    (tmp_path / "bad.csv").write_text("file,label\na.jpg,x\n")
    dm = ImageFolderDataModule(root=str(tmp_path), groups_csv="bad.csv")
    with pytest.raises(ConfigError, match=r"columns `path` and `group`, found \['file', 'label'\]"):
        dm.setup()
    dm = ImageFolderDataModule(root=str(tmp_path), groups_csv="absent.csv")
    with pytest.raises(ConfigError, match=r"`groups_csv`='absent.csv' not found"):
        dm.setup()


def test_imagefolder_split_reproducible(tmp_path, tools):
    tools.write_image_tree(tmp_path)
    make = lambda seed: ImageFolderDataModule(root=str(tmp_path), image_size=8, seed=seed)  # noqa: E731
    assert tools.same_split(make(0), make(0))
    assert not tools.same_split(make(0), make(1))


def test_imagefolder_limits_subsample_before_decoding(tmp_path, tools):
    tools.write_image_tree(tmp_path)
    (tmp_path / "train" / "cat" / "0_0.jpg").write_bytes(b"broken")
    # The broken file is decoded (and reported) only when a split selects it.
    with pytest.raises(ConfigError, match=r"cannot decode image .*0_0.jpg"):
        ImageFolderDataModule(root=str(tmp_path), image_size=8).setup()
    limited = ImageFolderDataModule(root=str(tmp_path), image_size=8, limit_train=6, limit_test=3)
    sizes = [limited.describe()["sizes"][s] for s in ("train", "test")]
    assert sizes == [6, 3] or pytest.fail("limits not applied")


def test_imagefolder_errors(tmp_path, tools):
    with pytest.raises(ConfigError, match=r"`root`=.* is not a folder; expected .*train/<class>"):
        ImageFolderDataModule(root=str(tmp_path / "missing")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"has no class folders"):
        ImageFolderDataModule(root=str(tmp_path / "empty")).setup()
    tools.write_image_tree(tmp_path / "mixed")
    tools.save_image(
        tmp_path / "mixed" / "train" / "cat" / "big.png", np.zeros((30, 30, 3), np.uint8)
    )
    with pytest.raises(ConfigError, match=r"images differ in size .* set `image_size`"):
        ImageFolderDataModule(root=str(tmp_path / "mixed")).setup()
    tools.save_image(tmp_path / "mixed" / "test" / "owl" / "1.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match=r"class folders \['owl'\] that the training tree lacks"):
        ImageFolderDataModule(root=str(tmp_path / "mixed"), image_size=8).setup()


def test_imagefolder_splits_must_be_different_folders(tmp_path):
    for dirs in ({"val_dir": "train"}, {"test_dir": "val"}, {"test_dir": "train/"}):
        with pytest.raises(ConfigError, match=r"must name different folders"):
            ImageFolderDataModule(root=str(tmp_path), **dirs)
    with pytest.raises(ConfigError, match=r"`root` must be a folder path, got None"):
        ImageFolderDataModule(root=None)  # type: ignore[arg-type]


def test_imagefolder_groups_csv_with_a_byte_order_mark(tmp_path, tools):
    rel = tools.write_image_tree(tmp_path)
    _groups_csv(tmp_path / "plain.csv", rel)
    text = (tmp_path / "plain.csv").read_text()
    (tmp_path / "groups.csv").write_text(text, encoding="utf-8-sig")  # as Excel saves it
    dm = ImageFolderDataModule(root=str(tmp_path), image_size=8, groups_csv="groups.csv")
    assert dm.data.train.groups is not None and dm.group_names == ["dark", "light"]
