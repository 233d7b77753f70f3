"""Seeded, stratified splits and subsets of index sets (no data is touched, only labels)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["stratified_split", "stratified_subset"]


def _groups_of(strata: torch.Tensor, indices: torch.Tensor) -> list[torch.Tensor]:
    """``indices`` grouped by their stratum, strata in ascending order."""
    values = strata[indices]
    return [indices[values == value] for value in torch.unique(values).tolist()]


def _largest_remainder(
    exact: torch.Tensor, capacity: torch.Tensor, total: int, generator: torch.Generator
) -> torch.Tensor:
    """Integer counts near ``exact`` that sum to ``total`` and never exceed ``capacity``.

    Floors first, then one more for the largest fractional parts (random tie-breaks).
    """
    counts = torch.minimum(exact.floor().long(), capacity)
    total = min(total, int(capacity.sum()))
    fraction = (exact - exact.floor()).tolist()
    tiebreak = torch.randperm(len(exact), generator=generator).tolist()
    order = sorted(range(len(exact)), key=lambda i: (-fraction[i], tiebreak[i]))
    while int(counts.sum()) < total:
        for i in order:
            if int(counts.sum()) >= total:
                break
            if counts[i] < capacity[i]:
                counts[i] += 1
    return counts


def stratified_split(
    strata: torch.Tensor,
    fractions: Sequence[float],
    generator: torch.Generator,
    indices: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Split ``indices`` into ``len(fractions) + 1`` disjoint parts with strata in proportion.

    Part ``i`` gets ``round(fractions[i] * len(indices))`` items, spread over the strata by
    the largest-remainder method, so small strata do not round every extra part to nothing;
    the first part keeps the rest.

    Args:
        strata: Integer stratum of every item ``[N]`` (labels, or label-group combinations).
        fractions: Share of each extra part, e.g. ``(0.15, 0.15)`` for a 70/15/15 split.
        generator: Draws the permutation within each stratum and breaks ties.
        indices: The items to split (default: all ``N``).

    Returns:
        ``[rest, part_1, part_2, ...]``: sorted int64 index tensors.

    Example:
        >>> labels = torch.tensor([0] * 10 + [1] * 10)
        >>> rest, test = stratified_split(labels, (0.2,), torch.Generator().manual_seed(0))
        >>> len(rest), len(test), labels[test].tolist()
        (16, 4, [0, 0, 1, 1])
    """
    if indices is None:
        indices = torch.arange(len(strata))
    groups = [g[torch.randperm(len(g), generator=generator)] for g in _groups_of(strata, indices)]
    sizes = torch.tensor([len(g) for g in groups], dtype=torch.long)
    remaining = sizes.clone()
    part_counts = []
    for fraction in fractions:
        exact = sizes.double() * fraction
        counts = _largest_remainder(exact, remaining, int(fraction * len(indices) + 0.5), generator)
        remaining -= counts
        part_counts.append(counts)
    parts: list[list[torch.Tensor]] = [[] for _ in range(len(fractions) + 1)]
    for c, members in enumerate(groups):
        start = 0
        for part, counts in enumerate(part_counts, start=1):
            stop = start + int(counts[c])
            parts[part].append(members[start:stop])
            start = stop
        parts[0].append(members[start:])
    return [torch.sort(torch.cat(p))[0] if p else torch.empty(0, dtype=torch.long) for p in parts]


def stratified_subset(
    strata: torch.Tensor, indices: torch.Tensor, n: int, generator: torch.Generator
) -> torch.Tensor:
    """Exactly ``min(n, len(indices))`` of ``indices``, with strata in proportion.

    Counts per stratum follow the largest-remainder method, so small subsets stay balanced.

    Returns:
        The chosen indices, sorted.

    Example:
        >>> labels = torch.tensor([0] * 6 + [1] * 3)
        >>> subset = stratified_subset(labels, torch.arange(9), 3, torch.Generator().manual_seed(0))
        >>> labels[subset].tolist()
        [0, 0, 1]
    """
    if n >= len(indices):
        return indices.clone()
    groups = _groups_of(strata, indices)
    sizes = torch.tensor([len(g) for g in groups], dtype=torch.long)
    counts = _largest_remainder(sizes.double() * n / len(indices), sizes, n, generator)
    chosen = [
        g[torch.randperm(len(g), generator=generator)[: int(c)]]
        for g, c in zip(groups, counts, strict=True)
    ]
    return torch.sort(torch.cat(chosen))[0]
