"""A policy's genes as tensors: :class:`CompiledPolicy` and :func:`compile_policy`.

The engine does not know :class:`~evoaug.Policy`: it takes the genes as plain
``(op name, probability, level)`` tuples per sub-policy, resolves the ops in the registry once,
and keeps what every batch needs as small tensors indexed by ``[sub-policy, gene position]``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from evoaug._checks import check_choice, check_number
from evoaug.exceptions import ConfigError
from evoaug.ops import (
    INTERPOLATIONS,
    Interpolation,
    OpSpec,
    bounded_kernel,
    get_op,
    is_builtin,
    registry_version,
)

__all__ = [
    "MAGNITUDE_SAMPLINGS",
    "CompiledPolicy",
    "MagnitudeSampling",
    "compile_policy",
    "run_op",
]

MagnitudeSampling = Literal["fixed", "uniform"]
MAGNITUDE_SAMPLINGS: tuple[str, ...] = ("fixed", "uniform")


@dataclass(frozen=True, eq=False, kw_only=True)
class CompiledPolicy:
    """A policy compiled to per-``(sub-policy, gene position)`` tensors, for :func:`apply`.

    Built by :func:`compile_policy`; the tensors all live on :attr:`device`. Ops are identified
    by their rank: the affine ops (those declaring ``affine``) first, then the others without a
    ``uint8`` kernel, then those with one, each in order of first use. Sorting a position's
    images by rank puts every op's images next to each other, the affine ones first, and
    applies the ops that may draw from the generator in their order of first use, as an unfused
    loop over ops would (ops with a ``uint8`` kernel draw nothing, so their place does not
    matter); the ``uint8`` kernels' images come last, outside the float chunks.

    The op specs are those registered when it was compiled (:attr:`registry_version`):
    registering, replacing or removing an op later does not change it; compile again.
    """

    specs: tuple[OpSpec, ...]
    """The applied ops (all but ``Identity``), by rank."""
    rank: torch.Tensor = field(repr=False)
    """``[K, L]`` int64: each gene's op rank; -1 for ``Identity`` and past a sub-policy's end."""
    values: torch.Tensor = field(repr=False)
    """``[2, K, L]`` float32: each gene's probability and level (0 past a sub-policy's end)."""
    ranges: torch.Tensor = field(repr=False)
    """``[3, R + 1]`` float32 per rank: ``low``, ``high - low``, ``signed``; last column: none."""
    n_affine: int
    """Ranks below this are affine ops."""
    vocabulary: tuple[tuple[int, ...], ...]
    """Per gene position, the ranks of the ops some sub-policy applies there, ascending: what
    the static path computes at that position."""
    bounds: tuple[float | None, ...]
    """Per rank, for ops with a :func:`~evoaug.ops.bounded_kernel`, the largest ``|magnitude|``
    the policy gives the op (in the draws' float32 arithmetic), which sizes that kernel on both
    paths; ``None`` for the other ops."""
    magnitude_sampling: MagnitudeSampling
    """``"fixed"``: each gene's level; ``"uniform"``: a level drawn in ``[0, level]`` per image."""
    interpolation: Interpolation
    """How the warps resample: ``"bilinear"`` or ``"nearest"``."""
    registry_version: int
    """:func:`evoaug.ops.registry_version` when compiled."""

    @property
    def device(self) -> torch.device:
        """Where the tensors are."""
        return self.rank.device

    @functools.cached_property
    def builtin(self) -> bool:
        """Whether every op is a built-in one (:func:`evoaug.ops.is_builtin`)."""
        return all(is_builtin(spec) for spec in self.specs)

    def to(self, device: torch.device | str) -> CompiledPolicy:
        """This compiled policy with its tensors on ``device`` (itself when already there)."""
        device = torch.device(device)
        if device == self.device:
            return self
        return dataclasses.replace(
            self,
            rank=self.rank.to(device),
            values=self.values.to(device),
            ranges=self.ranges.to(device),
        )


def run_op(
    spec: OpSpec,
    images: torch.Tensor,
    magnitudes: torch.Tensor,
    *,
    bound: float | None,
    generator: torch.Generator | None,
    interpolation: Interpolation,
) -> torch.Tensor:
    """Apply ``spec`` to float ``images`` with one magnitude each, as both paths do.

    With a ``bound`` (the op's entry in :attr:`CompiledPolicy.bounds`), the op's bounded kernel
    sized from it, so that the work does not depend on the magnitudes' values and both paths
    compute alike; else the op's kernel, with ``generator`` and ``interpolation`` where it
    takes them.
    """
    bounded = None if bound is None else bounded_kernel(spec)
    if bounded is not None and bound is not None:
        return bounded(images, magnitudes, bound)
    return spec(images, magnitudes, generator=generator, interpolation=interpolation)


def _gene(where: str, gene: object) -> tuple[str, float, float]:
    """``gene`` as ``(op, probability, level)``, checked; the op must be registered."""
    if not isinstance(gene, (tuple, list)) or len(gene) != 3:
        raise ConfigError(f"`{where}` must be a tuple (op, probability, level), got {gene!r}")
    op, probability, level = gene
    if not isinstance(op, str):
        raise ConfigError(f"`{where}` must start with an op name (str), got {op!r}")
    get_op(op)
    return (
        op,
        check_number(f"{where}.probability", probability, low=0.0, high=1.0),
        check_number(f"{where}.level", level, low=0.0, high=1.0),
    )


def compile_policy(
    sub_policies: Sequence[Sequence[tuple[str, float, float]]],
    *,
    magnitude_sampling: MagnitudeSampling = "fixed",
    interpolation: Interpolation = "bilinear",
) -> CompiledPolicy:
    """Compile genes to the tensors :func:`apply` augments batches with.

    Args:
        sub_policies: For each sub-policy, its genes ``(op name, probability, level)`` in
            application order; probabilities and levels in ``[0, 1]``. Sub-policies may differ
            in length.
        magnitude_sampling: ``"fixed"`` uses each gene's level; ``"uniform"`` draws each
            image's level uniformly in ``[0, level]``.
        interpolation: How the warps resample, one of :data:`evoaug.ops.INTERPOLATIONS`.

    Returns:
        The compiled policy, its tensors on the CPU (:meth:`CompiledPolicy.to` moves them).

    Raises:
        ConfigError: No sub-policies, a malformed gene, a probability or level outside
            ``[0, 1]``, or an unknown ``magnitude_sampling`` or ``interpolation``.
        UnknownOpError: An op is not registered.

    Example:
        >>> compiled = compile_policy([[("Invert", 0.5, 0.0), ("Rotate", 1.0, 0.3)]])
        >>> [spec.name for spec in compiled.specs], tuple(compiled.rank.shape)
        (['Rotate', 'Invert'], (1, 2))

    """
    check_choice("magnitude_sampling", magnitude_sampling, MAGNITUDE_SAMPLINGS)
    check_choice("interpolation", interpolation, INTERPOLATIONS)
    genes = [
        [_gene(f"sub_policies[{i}][{j}]", gene) for j, gene in enumerate(sub)]
        for i, sub in enumerate(sub_policies)
    ]
    if not genes:
        raise ConfigError("`sub_policies` must hold at least one sub-policy, got none")
    ops = dict.fromkeys(op for sub in genes for op, _, _ in sub)  # in order of first use
    applied = [spec for spec in map(get_op, ops) if spec.name != "Identity"]
    by_rank = tuple(
        [spec for spec in applied if spec.affine is not None]
        + [spec for spec in applied if spec.affine is None and spec.uint8 is None]
        + [spec for spec in applied if spec.uint8 is not None]
    )
    ranks = {spec.name: r for r, spec in enumerate(by_rank)}
    length = max(len(sub) for sub in genes)
    pad = [(-1, 0.0, 0.0)] * length
    rows = [[(ranks.get(op, -1), p, level) for op, p, level in sub] + pad for sub in genes]
    rows = [row[:length] for row in rows]
    rank = torch.tensor([[r for r, _, _ in row] for row in rows], dtype=torch.int64)
    values = torch.tensor([[[g[i] for g in row] for row in rows] for i in (1, 2)])
    ranges = torch.tensor(
        [[s.low, s.high - s.low, float(s.signed)] for s in by_rank] + [[0.0, 0.0, 0.0]]
    ).T.contiguous()
    # The largest |magnitude| of each op, as the draws compute magnitudes (float32, level
    # scaled by at most 1): ops with a bounded kernel are sized from it.
    largest = (ranges[0, rank] + values[1] * ranges[1, rank]).abs()
    bounds = tuple(
        max(abs(float(ranges[0, r])), float(largest[rank == r].max()))
        if bounded_kernel(spec) is not None
        else None
        for r, spec in enumerate(by_rank)
    )
    return CompiledPolicy(
        specs=by_rank,
        rank=rank,
        values=values,
        ranges=ranges,
        n_affine=sum(spec.affine is not None for spec in by_rank),
        vocabulary=tuple(tuple(sorted({row[j][0] for row in rows} - {-1})) for j in range(length)),
        bounds=bounds,
        magnitude_sampling=magnitude_sampling,
        interpolation=interpolation,
        registry_version=registry_version(),
    )
