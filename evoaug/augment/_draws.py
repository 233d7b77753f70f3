"""A batch's random numbers, drawn up front, and what they pick at each gene position.

Both execution paths read the same draws in the same way, so that they augment alike: the
draws are made before any op runs, in a fixed order, and their number depends on the batch size
and the policy's shape only, never on what fires. (Kernels that take a ``generator``, such as
Cutout's, draw more as they run; see :mod:`evoaug.augment._static`.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from evoaug.augment._compile import CompiledPolicy
from evoaug.ops import randint, uniform

__all__ = ["Draws", "draw", "positions"]


@dataclass(frozen=True)
class Draws:
    """The random numbers of one batch of ``B`` images, for a policy of ``L`` gene positions."""

    choice: torch.Tensor
    """``[B]`` int64: each image's sub-policy."""
    uniforms: torch.Tensor
    """``[L, 3, B]`` float32 in ``[0, 1)``: per position, each image's coin (the gene fires
    below its probability), level fraction (``"uniform"`` sampling) and sign (below 0.5:
    negative)."""


def draw(
    compiled: CompiledPolicy, b: int, generator: torch.Generator, device: torch.device
) -> Draws:
    """Draw the random numbers of a batch of ``b`` images, on ``device``.

    Two calls on ``generator``, in this order: the sub-policies, then the uniforms.
    """
    k, length = compiled.rank.shape
    choice = randint(k, (b,), generator, device)
    return Draws(choice, uniform((length, 3, b), generator, device))


def positions(
    compiled: CompiledPolicy, draws: Draws
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each gene position's ``(key, mags)``, in order.

    ``key`` ``[B]`` is the rank of the op each image applies there (``-1``: none, the gene did
    not fire or is ``Identity``); ``mags`` ``[B]`` float32 is its magnitude, signed, with the
    arithmetic of :meth:`evoaug.ops.OpSpec.magnitude` (``low + level * (high - low)``).
    Static shapes: indexing by the draws, no host synchronization.
    """
    rank = compiled.rank[draws.choice]  # [B, L]
    prob, level = compiled.values[:, draws.choice]  # [B, L] each
    for j in range(rank.shape[1]):
        coin, fraction, sign = draws.uniforms[j]
        key = torch.where(coin < prob[:, j], rank[:, j], -1)
        levels = level[:, j]
        if compiled.magnitude_sampling == "uniform":
            levels = levels * fraction
        low, span, signed = compiled.ranges[:, key]
        mags = low + levels * span
        yield key, torch.where(signed > 0, mags * torch.where(sign < 0.5, -1.0, 1.0), mags)
