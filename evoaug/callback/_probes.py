"""The probes of a search, drawn from the dataloaders a Trainer already has.

Map-style datasets are sampled by index with the search's own generator (reproducible, and the
training iterator is not touched); iterable datasets are read from a fresh iterator. A dataset
wrapped by :class:`~evoaug.pipeline.AugmentedDataset` is unwrapped, so probes are clean images.

The online search (the callback) and the offline search (a fresh model per candidate) draw their
probes and resolve their fairness groups with the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

from evoaug._run_layout import GROUPS_FROM_CLASSES, GROUPS_FROM_SENSITIVE
from evoaug.callback._batch import BatchLayout
from evoaug.callback._lightning import setup_val_dataloaders
from evoaug.callback._settings import CallbackConfig
from evoaug.evaluate import Probe, stratified_probe
from evoaug.exceptions import ConfigError, EvoAugError, InputError
from evoaug.pipeline import AugmentedDataset

__all__ = [
    "NO_GROUPS",
    "ProbeSet",
    "Samples",
    "check_groups",
    "collect_samples",
    "draw_probes",
    "pick_loader",
    "probes_for_fit",
    "resolve_groups",
]

NO_GROUPS = (
    "`fairness_groups='sensitive'` needs batches that carry group ids: yield (images, labels, "
    "groups) tuples or dicts with a 'group' key (or name yours with `batch_keys={'group': ...}`); "
    "or use fairness_groups='class' to measure worst-class accuracy instead"
)

Samples = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


def _clean_dataset(loader: DataLoader[Any]) -> Any:
    dataset = loader.dataset
    while isinstance(dataset, AugmentedDataset):
        dataset = dataset.dataset
    return dataset


def _to_unit_float(images: torch.Tensor, where: str) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    images = images.float()
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"{where} images must be in [0, 1] before augmentation, got values in [{lo:.3g}, "
            f"{hi:.3g}]. Normalize after augmentation instead: remove Normalize from the "
            "dataset's transforms and pass `normalize=(mean, std)` to EvoAugCallback"
        )
    return images


def collect_samples(
    loader: DataLoader[Any],
    *,
    n: int,
    generator: torch.Generator,
    batch_keys: Mapping[str, int | str] | None = None,
    where: str = "training",
) -> tuple[Samples, BatchLayout]:
    """Up to ``n`` samples ``(images, labels, groups or None)`` on the CPU, and the batch layout.

    Raises:
        ConfigError: The loader's dataset is empty.
        InputError: The batches cannot be read; the message names the layout found.
    """
    dataset = _clean_dataset(loader)
    collate = loader.collate_fn
    if not isinstance(dataset, IterableDataset) and hasattr(dataset, "__len__"):
        size = len(dataset)
        if size == 0:
            raise ConfigError(f"the {where} dataset is empty")
        take = torch.randperm(size, generator=generator)[: min(n, size)].tolist()
        chunks = []
        for start in range(0, len(take), 256):
            chunks.append(collate([dataset[i] for i in take[start : start + 256]]))
        layout = BatchLayout.infer(chunks[0], batch_keys)
        parts = [layout.split(chunk) for chunk in chunks]
    else:
        parts, layout_found = [], None
        count = 0
        for batch in loader:
            if layout_found is None:
                layout_found = BatchLayout.infer(batch, batch_keys)
            images, labels, groups = layout_found.split(batch)
            parts.append((images, labels, groups))
            count += images.shape[0]
            if count >= n:
                break
        if layout_found is None:
            raise ConfigError(f"the {where} dataloader yielded no batches")
        layout = layout_found
    images = torch.cat([p[0].detach().cpu() for p in parts])[:n]
    labels = torch.cat([p[1].detach().cpu() for p in parts])[:n].long()
    has_groups = parts[0][2] is not None
    groups = (
        torch.cat([p[2].detach().cpu() for p in parts if p[2] is not None])[:n].long()
        if has_groups
        else None
    )
    return (_to_unit_float(images, where), labels, groups), layout


def resolve_groups(
    fairness_groups: str, labels: torch.Tensor, groups: torch.Tensor | None
) -> tuple[torch.Tensor, str]:
    """The fairness groups of samples and where they come from (a ``groups_source`` name).

    ``"sensitive"`` requires the batches' groups, ``"class"`` takes the labels, ``"auto"`` the
    groups when the batches carry some, else the labels.

    Raises:
        ConfigError: ``fairness_groups="sensitive"`` and the batches carry no groups.
    """
    if fairness_groups == "sensitive" or (fairness_groups == "auto" and groups is not None):
        if groups is None:
            raise ConfigError(NO_GROUPS)
        return groups, GROUPS_FROM_SENSITIVE
    return labels, GROUPS_FROM_CLASSES


def pick_loader(loaders: Any, index: int, argument: str = "val_dataloader_idx") -> Any:
    """Loader ``index`` of a sequence of loaders (a single loader is returned as it is).

    Raises:
        ConfigError: ``index`` is not below the number of loaders.
    """
    if not isinstance(loaders, Sequence):
        return loaders
    if index >= len(loaders):
        raise ConfigError(
            f"`{argument}` must be below the number of validation loaders ({len(loaders)}), "
            f"got {index}"
        )
    return loaders[index] if loaders else None


@dataclass(frozen=True)
class ProbeSet:
    """The probes of a search and what the report keeps of them.

    Attributes:
        train: Training images, labels and groups for the look-ahead, difficulty and diversity.
        val: Validation images with equal counts per fairness group, for accuracy and fairness.
        groups_source: ``"sensitive attribute"`` or ``"classes"``.
        pool: The validation samples the probe was drawn from (images, labels, fairness groups).
        layout: The training batches' layout.
    """

    train: Probe
    val: Probe
    groups_source: str
    pool: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    layout: BatchLayout


def draw_probes(
    train_loader: DataLoader[Any],
    val_loader: DataLoader[Any] | None,
    *,
    train_size: int,
    val_size: int,
    fairness_groups: str,
    batch_keys: Mapping[str, int | str] | None,
    generator: torch.Generator,
) -> ProbeSet:
    """Draw a training probe and a group-stratified validation probe.

    The validation probe is drawn from ``4 * val_size`` validation samples (from training data
    when there is no validation loader), with equal counts per fairness group.

    Raises:
        ConfigError: Empty data, or groups required and absent (see :func:`resolve_groups`).
        InputError: Unreadable batches or images outside ``[0, 1]``.
    """
    (images, labels, groups), layout = collect_samples(
        train_loader, n=train_size, generator=generator, batch_keys=batch_keys
    )
    source = val_loader if val_loader is not None else train_loader
    where = "validation" if val_loader is not None else "training"
    (v_images, v_labels, v_groups), _ = collect_samples(
        source, n=4 * val_size, generator=generator, batch_keys=batch_keys, where=where
    )
    fairness, groups_source = resolve_groups(fairness_groups, v_labels, v_groups)
    val = stratified_probe(v_images, v_labels, fairness, size=val_size, generator=generator)
    return ProbeSet(
        train=Probe(images, labels, groups),
        val=val,
        groups_source=groups_source,
        pool=(v_images, v_labels, fairness),
        layout=layout,
    )


def probes_for_fit(trainer: Any, config: CallbackConfig, *, log: Callable[[str], Any]) -> ProbeSet:
    """The probes of a fit, drawn from the Trainer's loaders with the callback's settings.

    The validation probe comes from validation loader ``val_dataloader_idx`` (built now when
    Lightning has not validated yet), else, saying so, from training data.

    Raises:
        EvoAugError: The Trainer has no training dataloader.
    """
    if trainer.train_dataloader is None:
        raise EvoAugError("the Trainer has no training dataloader")
    val_loaders = trainer.val_dataloaders
    if val_loaders is None:
        val_loaders = setup_val_dataloaders(trainer)
    val_loader = pick_loader(val_loaders, config.val_dataloader_idx)
    if val_loader is None:
        log("evoaug: no validation data; the validation probe comes from training")
    return draw_probes(
        trainer.train_dataloader,
        val_loader,
        train_size=config.train_probe_size,
        val_size=config.val_probe_size,
        fairness_groups=config.fairness_groups,
        batch_keys=config.batch_keys,
        generator=torch.Generator().manual_seed(config.seed),
    )


def check_groups(loader: DataLoader[Any], batch_keys: Mapping[str, int | str]) -> None:
    """Fail early when the training batches carry no groups (``fairness_groups="sensitive"``).

    Reads one sample of a map-style dataset; other data sources are checked at the first
    generation instead.

    Raises:
        ConfigError: The batches have no group entry.
    """
    dataset = getattr(loader, "dataset", None)
    while isinstance(dataset, AugmentedDataset):
        dataset = dataset.dataset
    try:
        batch = loader.collate_fn([dataset[0]])  # type: ignore[index]
    except Exception:  # an unusual data source: checked again at the first generation
        return
    if BatchLayout.infer(batch, batch_keys).group is None:
        raise ConfigError(NO_GROUPS)
