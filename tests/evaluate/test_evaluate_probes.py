"""Probe sampling: stratified (equal counts per group) and random, both reproducible."""

from __future__ import annotations

import pytest
import torch

from evoaug import ConfigError
from evoaug.evaluate import random_probe, stratified_probe


def _data(n: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(n) % 10
    groups = torch.zeros(n, dtype=torch.long)
    groups[:6] = 1  # a 3% minority
    groups[6:40] = 2
    return images, labels, groups


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_stratified_probe_has_equal_counts_per_group() -> None:
    images, labels, groups = _data()
    probe = stratified_probe(images, labels, groups, size=90, generator=_gen())
    assert probe.groups is not None
    assert probe.groups.bincount().tolist() == [30, 30, 30]
    assert len(probe) == 90
    # the 6 minority images are each used 5 times (with replacement, evenly)
    minority = probe.images[probe.groups == 1].flatten(1)
    _, counts = torch.unique(minority, dim=0, return_counts=True)
    assert sorted(counts.tolist()) == [5] * 6
    # larger groups are drawn without replacement
    majority = probe.images[probe.groups == 0].flatten(1)
    assert torch.unique(majority, dim=0).shape[0] == 30
    # labels and groups stay attached to their images
    index = [int(torch.nonzero((images == img).all(dim=(1, 2, 3)))[0]) for img in probe.images[:10]]
    assert probe.labels[:10].tolist() == labels[index].tolist()
    assert probe.groups[:10].tolist() == groups[index].tolist()


def test_stratified_probe_is_reproducible_and_rounds_down() -> None:
    images, labels, groups = _data()
    a = stratified_probe(images, labels, groups, size=100, generator=_gen(3))
    b = stratified_probe(images, labels, groups, size=100, generator=_gen(3))
    c = stratified_probe(images, labels, groups, size=100, generator=_gen(4))
    assert torch.equal(a.images, b.images) and torch.equal(a.groups, b.groups)  # type: ignore[arg-type]
    assert not torch.equal(a.images, c.images)
    assert len(a) == 99  # rounded down to a multiple of the 3 groups


def test_stratified_probe_by_class() -> None:
    images, labels, _ = _data()
    probe = stratified_probe(images, labels, labels, size=50, generator=_gen())
    assert probe.groups is not None and probe.groups.bincount().tolist() == [5] * 10


def test_stratified_probe_errors() -> None:
    images, labels, groups = _data()
    with pytest.raises(
        ConfigError, match=r"`size` must be at least the number of groups \(3\), got 2"
    ):
        stratified_probe(images, labels, groups, size=2, generator=_gen())
    with pytest.raises(ConfigError, match=r"`size` must be a positive int, got 0"):
        stratified_probe(images, labels, groups, size=0, generator=_gen())
    with pytest.raises(ConfigError, match=r"pass `labels` to stratify by class"):
        stratified_probe(images, labels, None, size=10, generator=_gen())  # type: ignore[arg-type]


def test_random_probe() -> None:
    images, labels, groups = _data()
    a = random_probe(images, labels, groups, size=64, generator=_gen(1))
    b = random_probe(images, labels, size=64, generator=_gen(1))
    assert len(a) == 64 and torch.equal(a.images, b.images) and b.groups is None
    assert torch.unique(a.images.flatten(1), dim=0).shape[0] == 64  # without replacement
    with pytest.raises(ConfigError, match=r"`size` must be at most the number of images \(200\)"):
        random_probe(images, labels, size=201, generator=_gen())
