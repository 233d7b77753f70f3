"""Probe sets: the small, fixed image sets a generation of candidates is scored on.

A probe is plain data (images, labels, optional groups), read by the objectives and filled in by
the evaluator, the callback and the offline search. It lives below all of them so that every
layer can import it without importing another; the public names are
:class:`evoaug.evaluate.Probe` (also ``evoaug.Probe``), :func:`evoaug.evaluate.random_probe` and
:func:`evoaug.evaluate.stratified_probe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from evoaug.exceptions import ConfigError, InputError

__all__ = ["Probe", "random_probe", "stratified_probe"]


def _ids(name: str, value: object, n: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise InputError(
            f"`{name}` must be a torch.Tensor of int64 [N], got {type(value).__name__}"
        )
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise InputError(f"`{name}` must hold integers (int64 [N]), got dtype {value.dtype}")
    if value.ndim != 1 or value.shape[0] != n:
        raise InputError(
            f"`{name}` must have shape [N] with N={n} (one per image), got {tuple(value.shape)}"
        )
    return value.to(torch.int64)


@dataclass(frozen=True)
class Probe:
    """Images, labels and optional group ids, validated.

    Args:
        images: Float ``[N, C, H, W]`` in ``[0, 1]``, un-normalized (``uint8`` is converted).
        labels: Integer class labels ``[N]`` (stored as int64).
        groups: Optional integer group ids ``[N]`` (a sensitive attribute, or the labels).

    Raises:
        InputError: Wrong type, rank, dtype, value range, or lengths that do not match.

    Example:
        >>> import torch
        >>> probe = Probe(torch.rand(8, 1, 4, 4), torch.arange(8) % 2)
        >>> len(probe), probe.labels.dtype, probe.groups
        (8, torch.int64, None)

    """

    images: torch.Tensor
    labels: torch.Tensor
    groups: torch.Tensor | None = None

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, torch.Tensor):
            raise InputError(
                f"`images` must be a torch.Tensor [N, C, H, W], got {type(images).__name__}"
            )
        if images.ndim != 4:
            raise InputError(f"`images` must be 4-D [N, C, H, W], got shape {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        elif not images.dtype.is_floating_point:
            raise InputError(f"`images` must be float in [0, 1] or uint8, got dtype {images.dtype}")
        elif images.numel():
            lo, hi = torch.aminmax(images)
            if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
                raise InputError(
                    f"`images` must be in [0, 1] (un-normalized), got values in "
                    f"[{float(lo):.4g}, {float(hi):.4g}]; pass `normalize=` to the Evaluator "
                    "instead of normalizing the probe"
                )
        n = images.shape[0]
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", _ids("labels", self.labels, n))
        if self.groups is not None:
            object.__setattr__(self, "groups", _ids("groups", self.groups, n))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device | str) -> Probe:
        """The probe moved to ``device`` (``self`` when it is already there)."""
        device = torch.device(device)
        if self.images.device == device:
            return self
        groups = None if self.groups is None else self.groups.to(device)
        return Probe(self.images.to(device), self.labels.to(device), groups)

    def select(self, index: torch.Tensor) -> Probe:
        """The probe restricted to ``index`` (int64 positions, repeats allowed)."""
        index = index.to(self.images.device)
        groups = None if self.groups is None else self.groups[index]
        return Probe(self.images[index], self.labels[index], groups)


def _size_arg(size: object, n: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"`size` must be a positive int, got {size!r}")
    if n == 0:
        raise InputError("cannot draw a probe from zero images")
    return size


def random_probe(
    images: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor | None = None,
    *,
    size: int,
    generator: torch.Generator,
) -> Probe:
    """``size`` images drawn uniformly without replacement.

    Args:
        images: Float ``[N, C, H, W]`` in ``[0, 1]`` (or ``uint8``).
        labels: Integer labels ``[N]``.
        groups: Optional group ids ``[N]``.
        size: Number of images, at most ``N``.
        generator: A CPU ``torch.Generator``; the same seed gives the same probe.

    Raises:
        ConfigError: ``size`` is not a positive int or exceeds ``N``.
        InputError: Invalid images, labels or groups.

    Example:
        >>> import torch
        >>> x, y = torch.rand(100, 1, 4, 4), torch.arange(100) % 10
        >>> len(random_probe(x, y, size=32, generator=torch.Generator().manual_seed(0)))
        32

    """
    full = Probe(images, labels, groups)
    size = _size_arg(size, len(full))
    if size > len(full):
        raise ConfigError(
            f"`size` must be at most the number of images ({len(full)}), got {size}; "
            "use stratified_probe to sample with replacement"
        )
    return full.select(torch.randperm(len(full), generator=generator)[:size])


def stratified_probe(
    images: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    *,
    size: int,
    generator: torch.Generator,
) -> Probe:
    """A probe with the same number of images from every group, in shuffled order.

    Each of the G groups gets ``size // G`` images (``size`` is rounded down to a multiple of G).
    A group with at least that many images is sampled without replacement; a smaller group is
    sampled with replacement, evenly: each of its images appears ``⌊m / n_g⌋`` or ``⌈m / n_g⌉``
    times. Equal counts make the worst-group estimate as precise as the others (DESIGN.md).

    Args:
        images: Float ``[N, C, H, W]`` in ``[0, 1]`` (or ``uint8``).
        labels: Integer labels ``[N]``.
        groups: Integer group ids ``[N]``; pass ``labels`` to stratify by class.
        size: Total number of images, at least the number of groups.
        generator: A CPU ``torch.Generator``; the same seed gives the same probe.

    Raises:
        ConfigError: ``size`` is not a positive int, or smaller than the number of groups.
        InputError: Invalid images, labels or groups.

    Example:
        >>> import torch
        >>> x, y = torch.rand(100, 1, 4, 4), torch.arange(100) % 10
        >>> g = (torch.arange(100) < 5).long()  # a 5% minority group
        >>> probe = stratified_probe(x, y, g, size=40, generator=torch.Generator().manual_seed(0))
        >>> probe.groups.bincount().tolist()
        [20, 20]

    """
    if groups is None:
        raise ConfigError(
            "`groups` must be group ids int64 [N]; pass `labels` to stratify by class"
        )
    full = Probe(images, labels, groups)
    size = _size_arg(size, len(full))
    group_ids = cast(torch.Tensor, full.groups).cpu()
    values = torch.unique(group_ids)
    if size < len(values):
        raise ConfigError(
            f"`size` must be at least the number of groups ({len(values)}), got {size}"
        )
    per_group = size // len(values)
    chosen = []
    for value in values.tolist():
        members = torch.nonzero(group_ids == value).squeeze(1)
        n = members.numel()
        repeats = -(-per_group // n)  # ceil: a permutation per repeat, truncated
        order = torch.cat([torch.randperm(n, generator=generator) for _ in range(repeats)])
        chosen.append(members[order[:per_group]])
    index = torch.cat(chosen)
    return full.select(index[torch.randperm(index.numel(), generator=generator)])
