"""The datamodule registry, the shared split helpers, and instantiation from YAML-like config."""

from __future__ import annotations

import jsonargparse
import pytest
import torch

from evoaug import ConfigError
from evoaug.data import DATAMODULES, DigitsDataModule, ImageDataModule, get_datamodule
from evoaug.data._split import stratified_split, stratified_subset

NAMES = [
    "celeba", "cifar10", "cifar100", "colored-digits", "digits", "fashion-mnist", "imagefolder",
    "mnist", "svhn", "utkface",
]  # fmt: skip


def test_registry_names():
    assert sorted(DATAMODULES) == NAMES
    assert all(issubclass(cls, ImageDataModule) for cls in DATAMODULES.values())
    assert all(cls.dataset_name == name for name, cls in DATAMODULES.items())


def test_get_datamodule():
    dm = get_datamodule("digits", image_size=8, batch_size=4)
    assert isinstance(dm, DigitsDataModule) and dm.batch_size == 4
    with pytest.raises(ConfigError, match=r"`name` must be one of \['celeba', .*\], got 'digitz'"):
        get_datamodule("digitz")
    with pytest.raises(
        ConfigError, match=r"digits: .*'imag_size'; its arguments are \[.*'image_size'"
    ):
        get_datamodule("digits", imag_size=16)
    with pytest.raises(ConfigError, match=r"imagefolder: .*missing .*'root'"):
        get_datamodule("imagefolder")


@pytest.mark.parametrize("name", NAMES)
def test_every_datamodule_instantiates_from_config(name, tmp_path):
    """jsonargparse (LightningCLI's parser) reads each signature and builds the class."""
    cls = DATAMODULES[name]
    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    config = {"data": {"root": str(tmp_path), "batch_size": 16}}
    if "root" not in parser.get_defaults()["data"]:
        config["data"].pop("root")
    cfg = parser.parse_object(config)
    dm = parser.instantiate(cfg)["data"]
    assert isinstance(dm, cls) and dm.batch_size == 16
    with pytest.raises(jsonargparse.ArgumentError, match="batch_size"):
        parser.parse_object({"data": {**config["data"], "batch_size": "many"}})


def test_stratified_split_exact_sizes_even_for_small_strata():
    strata = torch.arange(100).repeat_interleave(3)  # 100 classes of 3, as tiny CIFAR-100
    rest, val, test = stratified_split(strata, (0.1, 0.2), torch.Generator().manual_seed(0))
    assert (len(rest), len(val), len(test)) == (210, 30, 60)
    assert len(torch.unique(torch.cat([rest, val, test]))) == 300
    counts = torch.bincount(strata[rest], minlength=100)
    assert int(counts.min()) >= 1


def test_stratified_subset_is_exact_and_seeded():
    strata = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    indices = torch.arange(100)
    take = lambda seed: stratified_subset(strata, indices, 10, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.bincount(strata[take(0)]).tolist() == [5, 3, 2]
    assert torch.equal(take(0), take(0)) and not torch.equal(take(0), take(1))
    assert torch.equal(stratified_subset(strata, indices, 500, torch.Generator()), indices)
