"""CIFAR-10/100, MNIST, Fashion-MNIST and SVHN on tiny files in the real on-disk formats."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch

from evoaug import ConfigError
from evoaug.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    FashionMNISTDataModule,
    MNISTDataModule,
    SVHNDataModule,
)


def test_cifar10_contract(tmp_path, tools):
    root = tools.write_cifar10(tmp_path)
    dm = CIFAR10DataModule(root=str(root), batch_size=8)
    description = tools.check_contract(dm, num_classes=10, channels=3, size=32, grouped=False)
    assert description["sizes"] == {"train": 90, "val": 10, "test": 30}
    assert dm.class_names == tools.cifar10_names


def test_cifar10_reads_pixels_in_channel_order(tmp_path, tools):
    import pickle

    root = tools.write_cifar10(tmp_path)
    batch = pickle.loads((root / "cifar-10-batches-py" / "test_batch").read_bytes())
    dm = CIFAR10DataModule(root=str(root), batch_size=30)
    images, labels = next(iter(dm.test_dataloader()))
    expected = torch.as_tensor(batch["data"][:30]).reshape(30, 3, 32, 32).float() / 255
    assert torch.allclose(images, expected) and labels.tolist() == batch["labels"][:30]


def test_cifar10_resize_limits_and_seeds(tmp_path, tools):
    root = str(tools.write_cifar10(tmp_path))
    dm = CIFAR10DataModule(root=root, image_size=16, limit_train=40, limit_test=10)
    tools.check_contract(dm, num_classes=10, channels=3, size=16, grouped=False)
    assert dm.describe()["sizes"] == {"train": 40, "val": 4, "test": 10}
    assert tools.same_split(CIFAR10DataModule(root=root), CIFAR10DataModule(root=root))
    assert not tools.same_split(CIFAR10DataModule(root=root), CIFAR10DataModule(root=root, seed=1))


def test_cifar100_contract(tmp_path, tools):
    root = tools.write_cifar100(tmp_path)
    dm = CIFAR100DataModule(root=str(root), batch_size=8)
    description = tools.check_contract(dm, num_classes=100, channels=3, size=32, grouped=False)
    assert description["sizes"] == {"train": 360, "val": 40, "test": 100}
    assert dm.class_names[:2] == ["class_0", "class_1"]


@pytest.mark.parametrize(
    ("cls", "folder", "names"),
    [(MNISTDataModule, "MNIST", "0"), (FashionMNISTDataModule, "FashionMNIST", "T-shirt/top")],
)
def test_mnist_family_contract(tmp_path, tools, cls, folder, names):
    root = tools.write_mnist(tmp_path, name=folder)
    dm = cls(root=str(root), batch_size=8)
    tools.check_contract(dm, num_classes=10, channels=1, size=28, grouped=False)
    assert dm.class_names[0] == names
    assert dm.describe()["sizes"] == {"train": 90, "val": 10, "test": 40}
    resized = cls(root=str(root), image_size=32, limit_train=20)
    assert resized.image_shape == (1, 32, 32) and len(resized.data.train) == 20


def test_svhn_contract_and_label_ten_is_zero(tmp_path, tools):
    root = tools.write_svhn(tmp_path / "svhn", extra=20)
    dm = SVHNDataModule(root=str(root), batch_size=8)
    tools.check_contract(dm, num_classes=10, channels=3, size=32, grouped=False)
    assert sorted(torch.unique(dm.data.test.labels).tolist()) == list(range(10))
    assert dm.describe()["sizes"] == {"train": 90, "val": 10, "test": 40}
    with_extra = SVHNDataModule(root=str(root), use_extra=True)
    assert len(with_extra.data.train) + len(with_extra.data.val) == 120


@pytest.mark.parametrize(
    ("cls", "match"),
    [
        (CIFAR10DataModule, r"cifar-10-batches-py.*download=True.*cifar-10-python.tar.gz"),
        (CIFAR100DataModule, r"cifar-100-python.*download=True"),
        (MNISTDataModule, r"MNIST/raw.*train-images-idx3-ubyte.*download=True"),
        (FashionMNISTDataModule, r"FashionMNIST/raw.*download=True"),
        (SVHNDataModule, r"train_32x32.mat.*download=True"),
    ],
)
def test_missing_files_say_what_is_expected_where(tmp_path, cls, match):
    dm = cls(root=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=match) as info:
        dm.setup("fit")
    assert str(tmp_path / "nowhere") in str(info.value)


@pytest.mark.parametrize(
    "cls", [CIFAR10DataModule, CIFAR100DataModule, MNISTDataModule, SVHNDataModule]
)
def test_failed_download_is_a_config_error(tmp_path, monkeypatch, cls):
    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(cls, "_download", offline)
    dm = cls(root=str(tmp_path), download=True)
    with pytest.raises(ConfigError, match=r"downloading .* failed .*no network.*copy the files"):
        dm.prepare_data()


def test_corrupt_cifar_batch_is_named(tmp_path, tools):
    root = tools.write_cifar10(tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match=r"cannot read .*data_batch_3 as a CIFAR batch"):
        CIFAR10DataModule(root=str(root)).setup()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_fraction": 0.0}, r"`val_fraction` must be a number in \(0, 1\), got 0.0"),
        ({"batch_size": "8"}, r"`batch_size` must be an int >= 1, got '8'"),
        ({"limit_test": -1}, r"`limit_test`"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CIFAR10DataModule(**kwargs)


def test_damaged_cifar_files_are_config_errors_naming_them(tmp_path, tools):
    import pickle

    root = tools.write_cifar10(tmp_path)
    folder = root / "cifar-10-batches-py"
    entry = pickle.loads((folder / "data_batch_3").read_bytes())
    entry["labels"] = entry["labels"][:-5]  # labels no longer match the images
    (folder / "data_batch_3").write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(ConfigError, match=r"data_batch_3 holds 20 images but 15 labels"):
        CIFAR10DataModule(root=str(root)).setup()
    root = tools.write_cifar10(tmp_path / "b")
    (root / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"cannot read .*data_batch_2 as a CIFAR batch"):
        CIFAR10DataModule(root=str(root)).setup()
    root = tools.write_cifar10(tmp_path / "c")
    (root / "cifar-10-batches-py" / "batches.meta").write_bytes(b"garbage\n")
    with pytest.raises(ConfigError, match=r"cannot read .*batches.meta as CIFAR metadata"):
        CIFAR10DataModule(root=str(root)).setup()


def test_damaged_svhn_files_are_config_errors_naming_them(tmp_path, tools):
    import scipy.io

    root = tools.write_svhn(tmp_path)
    mat = scipy.io.loadmat(str(root / "train_32x32.mat"))
    scipy.io.savemat(root / "train_32x32.mat", {"X": mat["X"], "y": mat["y"][:90]})
    with pytest.raises(ConfigError, match=r"train_32x32.mat holds 100 images but 90 labels"):
        SVHNDataModule(root=str(root)).setup()
    (root / "train_32x32.mat").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"cannot read .*train_32x32.mat as SVHN"):
        SVHNDataModule(root=str(root)).setup()


def test_svhn_default_root_is_its_own_folder():
    assert SVHNDataModule(root=None).root == "data/svhn"  # type: ignore[arg-type]
