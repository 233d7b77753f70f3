"""The grouped path's planner: one gene position's images sorted by op, as work items.

One stable sort by op rank groups a position's images op by op; the plan then says what to
apply to each contiguous range of the sorted images: one fused warp for all affine ops, then
one kernel call per other op, in rank order. :mod:`evoaug.augment._execute` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from evoaug.augment._compile import CompiledPolicy, run_op
from evoaug.ops import Interpolation, OpSpec, warp_affine, warp_nearest

__all__ = ["Plan", "Work", "chunks", "plan_position"]


@dataclass(frozen=True)
class Work:
    """One op applied to a contiguous range ``[start, end)`` of a position's sorted images.

    ``params`` holds one row per image of the range: magnitudes for an op's kernel, or
    ``[2, 3]`` inverse matrices for the fused affine warp (``spec is None``).
    ``interpolation`` is the policy's, for the fused warp and kernels that take it; ``bound``
    the op's :attr:`CompiledPolicy.bounds` entry, which sizes its bounded kernel.
    """

    spec: OpSpec | None
    start: int
    end: int
    params: torch.Tensor
    interpolation: Interpolation = "bilinear"
    bound: float | None = None

    @property
    def splittable(self) -> bool:
        """Whether the range may be applied in pieces: the op draws no random numbers."""
        return self.spec is None or not self.spec.takes_generator

    @property
    def native(self) -> bool:
        """Whether it applies to ``uint8`` images directly (:meth:`apply_uint8`).

        True for ops with a ``uint8`` kernel and for the fused warp with ``"nearest"``.
        """
        if self.spec is None:
            return self.interpolation == "nearest"
        return self.spec.uint8 is not None

    def piece(self, start: int, end: int) -> Work:
        """The sub-range ``[start, end)`` of this work, with its rows of ``params``."""
        if (start, end) == (self.start, self.end):
            return self
        rows = self.params[start - self.start : end - self.start]
        return Work(self.spec, start, end, rows, self.interpolation, self.bound)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Apply to ``images``, the float images of this range."""
        if self.spec is None:
            return warp_affine(images, self.params, interpolation=self.interpolation)
        return run_op(
            self.spec,
            images,
            self.params,
            bound=self.bound,
            generator=generator,
            interpolation=self.interpolation,
        )

    def apply_uint8(self, images: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Apply to ``images``, the uint8 images of this range (:attr:`native` work only).

        The result goes to ``out`` when given (``images`` itself is allowed).
        """
        if self.spec is None:  # the warp reads a bordered copy: `out` may be `images`
            return warp_nearest(images, self.params, out=out)
        result = self.spec.apply_uint8(images, self.params)
        return result if out is None else out.copy_(result)


@dataclass(frozen=True)
class Plan:
    """The work of one gene position over its images sorted by op.

    ``order`` lists the image indices in sorted order; ``work`` covers the augmented ranges of
    it in application order. ``one_op``: one op takes every image (``order`` is the identity).
    """

    order: torch.Tensor
    work: list[Work]
    one_op: bool


def plan_position(
    images: torch.Tensor, compiled: CompiledPolicy, key: torch.Tensor, mags: torch.Tensor
) -> Plan | None:
    """Plan one position: image ``i`` gets op ``compiled.specs[key[i]]`` (none where ``-1``).

    One stable sort by rank groups the images op by op (ascending image index within an op, as
    ``nonzero`` would give); one ``bincount`` read back to the host sizes the groups. ``mags``
    are the images' magnitudes, in image order. Returns ``None`` when no image is augmented.
    """
    order = torch.argsort(key, stable=True)
    counts = torch.bincount(key + 1, minlength=len(compiled.specs) + 1).tolist()
    if counts[0] == images.shape[0]:
        return None
    work = _work(images, compiled, counts, mags[order])
    return Plan(order, work, one_op=max(counts[1:]) == images.shape[0])


def _work(
    images: torch.Tensor, compiled: CompiledPolicy, counts: list[int], mags: torch.Tensor
) -> list[Work]:
    """The work of one position, in application order, over the sorted images.

    ``mags`` are the magnitudes in sorted order. The affine ops' images come first and become
    one fused warp; the other ops follow by rank, so ops drawing from the generator are called
    in the same order as without fusion.
    """
    dtype = images.dtype if images.dtype.is_floating_point else torch.float32
    h, w = images.shape[-2:]
    interpolation = compiled.interpolation
    work: list[Work] = []
    matrices: list[torch.Tensor] = []
    start = counts[0]
    pieces = mags.split_with_sizes(counts)  # one call for every op's magnitudes (views)
    for r, spec in enumerate(compiled.specs):
        end = start + counts[r + 1]
        if end == start:
            continue
        if r < compiled.n_affine:
            piece = pieces[r + 1] if dtype == mags.dtype else pieces[r + 1].to(dtype)
            matrices.append(spec.matrices(piece, h, w))
        else:
            work.append(Work(spec, start, end, pieces[r + 1], interpolation, compiled.bounds[r]))
        start = end
    if matrices:
        n_affine = sum(m.shape[0] for m in matrices)
        fused = matrices[0] if len(matrices) == 1 else torch.cat(matrices)
        work.insert(0, Work(None, counts[0], counts[0] + n_affine, fused, interpolation))
    return work


def chunks(work: list[Work], size: int) -> list[list[Work]]:
    """Pack the work into chunks of at most ``size`` images, splitting where allowed.

    Work that draws from the generator is never split, so it draws as if applied whole; such
    work larger than ``size`` gets a chunk of its own.
    """
    packed: list[list[Work]] = []
    current: list[Work] = []
    room = size
    for item in work:
        start = item.start
        while start < item.end:
            n = item.end - start if not item.splittable else min(item.end - start, room)
            if n > room and current:
                packed.append(current)
                current, room = [], size
            current.append(item.piece(start, start + n))
            room -= n
            start += n
            if room <= 0:
                packed.append(current)
                current, room = [], size
    if current:
        packed.append(current)
    return packed
