"""The static-shape path: every image goes through the same tensor operations, whatever it drew.

At each gene position, for the whole batch:

1. **Affine ops**, one warp: every affine op of the position computes its matrices for every
   image, and ``torch.where`` keeps each image's own (the identity for images that drew no
   affine op); one :func:`~evoaug.ops.warp_affine` warps the batch, and ``torch.where`` keeps the
   warped pixels of the images that drew an affine op only.
2. **Every other op** of the position, in rank order: its kernel runs on the whole (warped)
   batch, with magnitude ``low`` (level 0, the identity) for the images that did not draw it,
   and ``torch.where`` keeps its output for the images that did. Kernels that would size their
   work from the magnitudes' values (``GaussianBlur``) run, on both paths, as their
   :func:`~evoaug.ops.bounded_kernel`, sized from the policy (:attr:`CompiledPolicy.bounds`).

``uint8`` images are worked on as in the grouped path, so that both give the same bytes: the
nearest warp and the ops with a ``uint8`` kernel (Posterize, Solarize, Equalize, Invert) on the
bytes, the other ops on a float copy rounded back after the position.

Which ops run, and on what shapes, depends only on the policy (the ops a position can draw,
:attr:`CompiledPolicy.vocabulary`) and the images' shape, never on the draws: no ``.item()``,
no ``nonzero``, no data-dependent shape, no host synchronization. A call can then be captured in
a CUDA graph or compiled whole by ``torch.compile(fullgraph=True)``, and costs a fixed number of
kernel launches; the price is that every op of a position is computed for every image, drawn
or not. The exceptions:

- kernels that take a ``generator`` (Cutout, GaussianNoise, Perspective, custom ones) run on
  the whole batch too, so they draw for every image, not only for the images that drew the op
  as in the grouped path: those images get other (equally distributed) squares, noise or
  corners than on the grouped path. A call that holds them cannot be compiled with
  ``fullgraph=True`` (dynamo does not trace draws from a ``torch.Generator``), nor captured in
  a CUDA graph unless the generator is a CUDA one;
- a custom kernel that reads a value on the host still does so here.
"""

from __future__ import annotations

import torch

from evoaug.augment._compile import CompiledPolicy, run_op
from evoaug.augment._draws import Draws, positions
from evoaug.augment._execute import from_float, to_float
from evoaug.ops import warp_affine

__all__ = ["run_static"]


def run_static(
    compiled: CompiledPolicy,
    x: torch.Tensor,
    draws: Draws,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment ``x`` ``[B, C, H, W]`` (float or uint8) with ``draws``, on the static path.

    Args:
        compiled: The genes, on ``x``'s device.
        x: The images; not modified.
        draws: The batch's draws (:func:`~evoaug.augment._draws.draw`).
        generator: Passed to kernels that take one; ``None`` lets them draw from a fresh
            OS-seeded generator.

    Returns:
        The augmented images, ``x``'s shape and dtype: a new tensor, or ``x`` itself when the
        policy applies no op at all.

    """
    out = x
    genes = positions(compiled, draws)
    for vocabulary, (key, mags) in zip(compiled.vocabulary, genes, strict=True):
        if vocabulary:
            out = _position(compiled, out, vocabulary, key, mags, generator)
    return out


def _position(
    compiled: CompiledPolicy,
    images: torch.Tensor,
    vocabulary: tuple[int, ...],
    key: torch.Tensor,
    mags: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One gene position: image ``i`` gets op ``compiled.specs[key[i]]`` (none where ``-1``).

    On ``uint8`` images, as in the grouped path, the nearest warp and the ops with a ``uint8``
    kernel work on the bytes; the rest work on a float copy, rounded back.
    """
    uint8 = images.dtype == torch.uint8
    affine = [r for r in vocabulary if r < compiled.n_affine]
    others = vocabulary[len(affine) :]
    in_bytes = [r for r in others if uint8 and compiled.specs[r].uint8 is not None]
    in_floats = [r for r in others if r not in in_bytes]
    x = images
    if affine and uint8 and compiled.interpolation == "nearest":  # a gather: copies bytes
        x, affine = _warp(compiled, x, affine, key, mags), []
    if affine or in_floats:
        floats = _float_ops(compiled, to_float(x), affine, in_floats, key, mags, generator)
        x = from_float(floats, images.dtype)  # uint8: rounded, in place (`floats` is new)
    for r in in_bytes:
        spec, hit = compiled.specs[r], key == r
        result = spec.apply_uint8(images, torch.where(hit, mags, spec.low))
        x = torch.where(hit.view(-1, 1, 1, 1), result, x)
    return x


def _float_ops(
    compiled: CompiledPolicy,
    x: torch.Tensor,
    affine: list[int],
    ranks: list[int],
    key: torch.Tensor,
    mags: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The ``affine`` ranks' warp then the ``ranks``' kernels on float ``x``: a new tensor."""
    if affine:
        x = _warp(compiled, x, affine, key, mags)
    out = x
    for r in ranks:
        spec, hit = compiled.specs[r], key == r
        result = run_op(
            spec,
            x,
            torch.where(hit, mags, spec.low),
            bound=compiled.bounds[r],
            generator=generator,
            interpolation=compiled.interpolation,
        )
        out = torch.where(hit.view(-1, 1, 1, 1), result, out)
    return out


def _warp(
    compiled: CompiledPolicy,
    x: torch.Tensor,
    affine: list[int],
    key: torch.Tensor,
    mags: torch.Tensor,
) -> torch.Tensor:
    """Warp the images that drew an affine op (ranks ``affine``) by their op's matrix."""
    b, _, h, w = x.shape
    # The matrices in the images' float dtype (float32 for uint8), as in the grouped path.
    dtype = x.dtype if x.is_floating_point() else torch.float32
    m = mags.to(dtype)
    matrices = torch.eye(2, 3, device=x.device, dtype=dtype).expand(b, 2, 3)
    for r in affine:
        mine = (key == r).view(b, 1, 1)
        matrices = torch.where(mine, compiled.specs[r].matrices(m, h, w), matrices)
    warped = warp_affine(x, matrices, interpolation=compiled.interpolation)
    drew = (key >= 0) & (key < compiled.n_affine)
    return torch.where(drew.view(b, 1, 1, 1), warped, x)
