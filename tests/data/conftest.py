"""Writers of tiny datasets in the real on-disk formats, and the shared datamodule checks."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def _random_images(rng: np.random.Generator, n: int, *shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _labels(n: int, classes: int) -> list[int]:
    return [i % classes for i in range(n)]


def write_cifar10(root: Path, per_batch: int = 20, n_test: int = 30) -> Path:
    """``root/cifar-10-batches-py`` as the official release (Python pickles, latin1)."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    files = [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]
    for name, n in files:
        entry = {
            "batch_label": name,
            "labels": _labels(n, 10),
            "data": _random_images(rng, n, 3 * 32 * 32),
            "filenames": [f"img_{i}.png" for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"label_names": CIFAR10_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


def write_cifar100(root: Path, n_train: int = 400, n_test: int = 100) -> Path:
    """``root/cifar-100-python`` with ``train``, ``test`` and ``meta``."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", n_train), ("test", n_test)):
        entry = {
            "fine_labels": _labels(n, 100),
            "coarse_labels": [label // 5 for label in _labels(n, 100)],
            "data": _random_images(rng, n, 3 * 32 * 32),
            "filenames": [f"img_{i}.png" for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {
        "fine_label_names": [f"class_{i}" for i in range(100)],
        "coarse_label_names": [f"super_{i}" for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


def write_mnist(root: Path, name: str = "MNIST", n_train: int = 100, n_test: int = 40) -> Path:
    """``root/<name>/raw`` with the four uncompressed idx files (big-endian headers)."""
    rng = np.random.default_rng(2)
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = _random_images(rng, n, 28, 28)
        labels = np.array(_labels(n, 10), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.tobytes()
        )
    return root


def write_svhn(root: Path, n_train: int = 100, n_test: int = 40, extra: int = 0) -> Path:
    """``root/{train,test}_32x32.mat``: X uint8 ``(32, 32, 3, N)``, y ``(N, 1)`` in 1..10."""
    import scipy.io

    rng = np.random.default_rng(3)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test), ("extra", extra)):
        if n == 0:
            continue
        x = _random_images(rng, n, 32, 32, 3).transpose(1, 2, 3, 0)
        y = np.array([[label + 1] for label in _labels(n, 10)], dtype=np.uint8)  # 10 = digit 0
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
    return root


def save_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


CELEBA_ATTRIBUTES = ["5_o_Clock_Shadow", "Blond_Hair", "Male", "Smiling", "Young"]


def write_celeba(root: Path, n: int = 64) -> Path:
    """``root/celeba/`` with img_align_celeba/*.jpg (non-square), the attribute and partition
    lists; torchvision's identity/bbox/landmark files are not needed by evoaug."""
    rng = np.random.default_rng(4)
    folder = root / "celeba"
    lines = [str(n), " ".join(CELEBA_ATTRIBUTES)]
    partition = []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        save_image(folder / "img_align_celeba" / name, _random_images(rng, 1, 22, 18, 3)[0])
        values = [1 if (i >> bit) & 1 else -1 for bit in range(len(CELEBA_ATTRIBUTES))]
        lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
        partition.append(f"{name} {0 if i < n * 5 // 8 else (1 if i < n * 6 // 8 else 2)}")
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root


def write_image_tree(
    root: Path,
    classes: tuple[str, ...] = ("cat", "dog", "frog"),
    n_train: int = 12,
    n_test: int = 4,
    size: tuple[int, int] = (20, 16),
) -> list[str]:
    """``root/train/<class>/*.{jpg,png}`` and ``root/test/<class>/*``; returns relative paths."""
    rng = np.random.default_rng(5)
    written = []
    for split, n in (("train", n_train), ("test", n_test)):
        for c, name in enumerate(classes):
            for i in range(n):
                ext = "png" if i % 2 else "jpg"
                rel = f"{split}/{name}/{c}_{i}.{ext}"
                save_image(root / rel, _random_images(rng, 1, size[1], size[0], 3)[0])
                written.append(rel)
    return written


def write_utkface(root: Path, n: int = 120) -> list[str]:
    """``root/<age>_<gender>_<race>_<date>.jpg.chip.jpg`` files plus malformed names."""
    rng = np.random.default_rng(6)
    for i in range(n):
        age, gender, race = 5 + (i * 7) % 80, i % 2, (i // 2) % 5
        name = f"{age}_{gender}_{race}_2017011{i:04d}.jpg.chip.jpg"
        save_image(root / name, _random_images(rng, 1, 24, 24, 3)[0])
    malformed = ["61_1_20170109142408075.jpg.chip.jpg", "12_5_0_20170101.jpg", "face.jpg"]
    for name in malformed:
        save_image(root / name, _random_images(rng, 1, 24, 24, 3)[0])
    (root / "README.txt").write_text("not an image")
    return malformed


def check_contract(
    dm: Any, *, num_classes: int, channels: int, size: int, grouped: bool
) -> dict[str, Any]:
    """The datamodule contract: batches, dtypes, ranges, attributes, describe()."""
    dm.setup("fit")
    dm.setup("test")
    assert dm.num_classes == num_classes == len(dm.class_names)
    assert dm.channels == channels
    assert dm.image_shape == (channels, size, size)
    mean, std = dm.normalization
    assert len(mean) == len(std) == channels
    assert all(0.0 <= m <= 1.0 for m in mean) and all(0.0 < s <= 0.5 for s in std)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        assert isinstance(batch, (tuple, list)) and len(batch) == (3 if grouped else 2)
        images, labels = batch[0], batch[1]
        assert images.dtype == torch.float32 and images.shape[1:] == (channels, size, size)
        assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
        assert labels.dtype == torch.int64 and labels.shape == (len(images),)
        assert int(labels.min()) >= 0 and int(labels.max()) < num_classes
        if grouped:
            groups = batch[2]
            assert groups.dtype == torch.int64 and groups.shape == labels.shape
            assert int(groups.max()) < len(dm.group_names)
    if grouped:
        assert dm.group_names and isinstance(dm.sensitive_attribute, str)
    else:
        assert dm.group_names is None
    description = dm.describe()
    assert json.loads(json.dumps(description)) == description  # plain values only
    for key in ("dataset_name", "num_classes", "class_names", "group_names", "channels",
                "image_shape", "normalization", "sensitive_attribute", "sizes"):  # fmt: skip
        assert key in description
    assert description["sizes"]["train"] > 0 and description["sizes"]["test"] > 0
    return description


def same_split(a: Any, b: Any) -> bool:
    """Whether two datamodules hold identical train, val and test data."""
    return all(
        torch.equal(getattr(a.data, s).images, getattr(b.data, s).images)
        and torch.equal(getattr(a.data, s).labels, getattr(b.data, s).labels)
        for s in ("train", "val", "test")
    )


@pytest.fixture
def tools() -> SimpleNamespace:
    """The writers and checks above (test modules cannot import conftest by name)."""
    return SimpleNamespace(
        check_contract=check_contract,
        same_split=same_split,
        write_cifar10=write_cifar10,
        write_cifar100=write_cifar100,
        write_mnist=write_mnist,
        write_svhn=write_svhn,
        write_celeba=write_celeba,
        write_image_tree=write_image_tree,
        write_utkface=write_utkface,
        save_image=save_image,
        celeba_attributes=CELEBA_ATTRIBUTES,
        cifar10_names=CIFAR10_NAMES,
    )
