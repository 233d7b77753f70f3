"""The grouped path's execution: a :class:`~evoaug.augment._plan.Plan` applied to float or uint8.

Float images (a private copy) are augmented in place, a chunk at a time; uint8 images are
converted to float per chunk and rounded back after each gene position, except where the work
applies to uint8 directly (ops with a ``uint8`` kernel, and the nearest fused warp).
"""

from __future__ import annotations

import torch

from evoaug.augment._plan import Plan, Work, chunks

__all__ = ["CHUNK_ELEMENTS", "from_float", "rounded", "run", "to_float"]

CHUNK_ELEMENTS = 1 << 20
"""On CPU, images are converted and augmented in chunks of about this many elements, so that a
chunk's float copies stay in cache (converting a whole 224x224 batch at once is ~3x slower)."""

_ROUNDER = 1.5 * 2.0**23  # float32 x + this, for 0 <= x < 2**22: round(x) in the low bits


def run(images: torch.Tensor, plan: Plan, generator: torch.Generator) -> torch.Tensor:
    """Apply ``plan`` to the images it covers, in chunks; return the augmented batch.

    On CPU, chunks hold about :data:`CHUNK_ELEMENTS` elements, so that every temporary stays in
    cache and is small enough to be reused by the allocator (a fresh 38 MB tensor costs
    page faults on every call); ops are per-image, so chunking does not change the results.
    When one op takes every image, a batch that fits in one chunk is augmented whole, without
    gathering. Float ``images`` (a private copy) are modified in place; uint8 ``images`` are
    left alone.
    """
    order, work = plan.order, plan.work
    size = images.shape[0]
    if images.device.type == "cpu":
        size = max(1, CHUNK_ELEMENTS // max(1, images[0].numel()))
    if images.dtype == torch.uint8:
        return _run_uint8(images, plan, generator, size)
    packed = chunks(work, size)
    if plan.one_op and len(packed) == 1:
        return packed[0][0](images, generator)
    for chunk in packed:
        floats = images.index_select(0, order[chunk[0].start : chunk[-1].end])
        for item in chunk:
            rows = slice(item.start - chunk[0].start, item.end - chunk[0].start)
            images.index_copy_(0, order[item.start : item.end], item(floats[rows], generator))
    return images


def _run_uint8(
    images: torch.Tensor, plan: Plan, generator: torch.Generator, size: int
) -> torch.Tensor:
    """:func:`run` for uint8 images, which it does not modify: convert per chunk.

    The batch is gathered once in sorted order, so that each chunk is a contiguous slice,
    augmented in float and rounded back in place; one ``index_select`` then unsorts it (on
    uint8 images, much faster on CPU than scattering the chunks with ``index_copy_``). Native
    work (ops with a ``uint8`` kernel, ranked last, and the nearest fused warp, first) skips
    the float chunks and applies to its slice directly; the rest stays contiguous.
    """
    order = plan.order
    native = [item for item in plan.work if item.native]
    packed = chunks([item for item in plan.work if not item.native], size)
    if plan.one_op and native:
        return native[0].apply_uint8(images)
    if plan.one_op and len(packed) == 1:
        return from_float(packed[0][0](to_float(images), generator), images.dtype)
    ordered = images.index_select(0, order)
    for chunk in packed:
        _float_chunk(ordered[chunk[0].start : chunk[-1].end], chunk, generator)
    for item in native:
        target = ordered[item.start : item.end]
        item.apply_uint8(target, out=target)
    b = images.shape[0]
    inverse = torch.empty_like(order).scatter_(0, order, torch.arange(b, device=order.device))
    with torch.inference_mode(False):  # the call's result, most often: no copy to leave it
        return ordered.index_select(0, inverse)


def _float_chunk(target: torch.Tensor, chunk: list[Work], generator: torch.Generator) -> None:
    """Augment ``target``, the uint8 images of ``chunk``, in float; round back in place."""
    floats = to_float(target)
    for item, rows in zip(
        chunk, floats.split_with_sizes([i.end - i.start for i in chunk]), strict=True
    ):
        result = item(rows, generator)
        if result.untyped_storage().data_ptr() == floats.untyped_storage().data_ptr():
            result = result.clone()  # a view of its input: copy before overwriting
        rows.copy_(result)
    target.copy_(rounded(floats))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 in ``[0, 1]``; float images unchanged."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)  # faster than one mixed-dtype `div`
    return images


def from_float(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float images as ``dtype``: uint8 rounds ``images * 255`` (in place); float unchanged."""
    if dtype == torch.uint8:
        return rounded(images).to(torch.uint8)
    return images


def rounded(images: torch.Tensor) -> torch.Tensor:
    """``images * 255`` rounded and clamped to ``0..255``, to cast to uint8 (modifies ``images``).

    On float32, adding 1.5 * 2**23 to a value in ``[0, 255]`` rounds it to an integer, half to
    even as ``torch.round`` does, into the low bits of the float: the float's bits read as int32
    then cast to uint8 (modulo 256) give the rounded value. This is one pass fewer than
    ``round_`` and a cast, and on CPU both beat PyTorch's direct float -> uint8 cast several
    times; other dtypes round and go through int16.
    """
    images = images.mul_(255.0).clamp_(0.0, 255.0)
    if images.dtype == torch.float32:
        return images.add_(_ROUNDER).view(torch.int32)
    return images.round_().to(torch.int16)
