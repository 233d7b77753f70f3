"""CelebA on a tiny generated copy of its files (images, attribute and partition lists)."""

from __future__ import annotations

import shutil

import pytest
import torch

from evoaug import ConfigError
from evoaug.data import CelebADataModule


def test_celeba_contract_with_groups(tmp_path, tools):
    root = tools.write_celeba(tmp_path)
    dm = CelebADataModule(root=str(root), image_size=8, batch_size=8)
    description = tools.check_contract(dm, num_classes=2, channels=3, size=8, grouped=True)
    assert description["sizes"] == {"train": 40, "val": 8, "test": 16}  # official partition
    assert dm.class_names == ["not Smiling", "Smiling"]
    assert dm.group_names == ["not Male", "Male"] and dm.sensitive_attribute == "Male"


def test_celeba_labels_and_groups_follow_the_attribute_file(tmp_path, tools):
    root = tools.write_celeba(tmp_path)
    dm = CelebADataModule(
        root=str(root), image_size=8, target_attribute="Young", sensitive_attribute="Blond_Hair"
    )
    # write_celeba sets attribute `bit` of image i (0-based) to bit `bit` of i; train is 0..39.
    young, blond = (tools.celeba_attributes.index(a) for a in ("Young", "Blond_Hair"))
    index = torch.arange(40)
    assert dm.data.train.labels.tolist() == ((index >> young) & 1).tolist()
    assert dm.data.train.groups is not None
    assert dm.data.train.groups.tolist() == ((index >> blond) & 1).tolist()


def test_celeba_without_sensitive_attribute_and_native_size(tmp_path, tools):
    root = tools.write_celeba(tmp_path)
    # root may also be the folder holding the files directly
    dm = CelebADataModule(root=str(root / "celeba"), sensitive_attribute=None, image_size=None)
    images, _ = next(iter(dm.train_dataloader()))
    assert images.shape[1:] == (3, 22, 18) and dm.group_names is None


def test_celeba_limits_and_seeds(tmp_path, tools):
    root = str(tools.write_celeba(tmp_path))
    dm = CelebADataModule(root=root, image_size=8, limit_train=20, limit_test=6)
    assert dm.describe()["sizes"] == {"train": 20, "val": 4, "test": 6}
    same = CelebADataModule(root=root, image_size=8, limit_train=20, limit_test=6)
    other = CelebADataModule(root=root, image_size=8, limit_train=20, limit_test=6, seed=5)
    assert tools.same_split(dm, same) and not tools.same_split(dm, other)


def test_celeba_unknown_attribute_lists_the_names(tmp_path, tools):
    root = tools.write_celeba(tmp_path)
    dm = CelebADataModule(root=str(root), target_attribute="Smiling_Broadly")
    with pytest.raises(ConfigError, match=r"`target_attribute` must be one of \[.*'Smiling'.*\]"):
        dm.setup()


def test_celeba_missing_files(tmp_path, tools):
    with pytest.raises(ConfigError, match=r"img_align_celeba.*list_attr_celeba.txt.*download=True"):
        CelebADataModule(root=str(tmp_path)).setup()
    root = tools.write_celeba(tmp_path / "c")
    shutil.rmtree(root / "celeba" / "img_align_celeba")
    with pytest.raises(ConfigError, match=r"missing .*img_align_celeba/"):
        CelebADataModule(root=str(root)).setup()


def test_celeba_same_target_and_sensitive_is_rejected():
    with pytest.raises(ConfigError, match=r"`sensitive_attribute` must differ from"):
        CelebADataModule(target_attribute="Male", sensitive_attribute="Male")
