"""Exact uint8 kernels: ops that policies apply to ``uint8`` images without converting to float.

Each kernel takes ``uint8`` images ``[B, C, H, W]`` and float magnitudes ``[B]`` and returns new
``uint8`` images equal to the float kernel's output rounded to 8 bits,
``round(float_kernel(images / 255, magnitudes) * 255)``, bit for bit: the op table registers them
as the ops' ``uint8`` kernels. They are pure integer arithmetic (and-masks, saturating minimum,
xor, lookup tables), so a policy saves the float round trip and the op's float passes.

On the CPU, PyTorch's comparisons and ``where`` are an order of magnitude slower than uint8
arithmetic, so conditions are written as arithmetic on 0/1 bytes.
"""

from __future__ import annotations

import functools

import torch

from evoaug.ops._color import equalize_levels

__all__ = ["equalize", "invert", "posterize", "solarize"]


@functools.lru_cache(maxsize=8)
def _levels(device: torch.device) -> torch.Tensor:
    """The 256 levels as the float kernels see them, ``level / 255`` in float32 (read-only)."""
    with torch.inference_mode(False):  # usable anywhere
        return torch.arange(256, device=device, dtype=torch.float32).div_(255.0)


def _float32(magnitudes: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Magnitudes as float32 on the images' device, as the float kernels see them."""
    if magnitudes.dtype != torch.float32 or magnitudes.device != images.device:
        magnitudes = magnitudes.to(device=images.device, dtype=torch.float32)
    return magnitudes


def _per_image(values: torch.Tensor) -> torch.Tensor:
    """Per-image uint8 values ``[B]`` as ``[B, 1, 1, 1]``."""
    return values.to(torch.uint8).view(-1, 1, 1, 1)


def posterize(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """:func:`evoaug.ops._color.posterize` on uint8: keep the top ``round(m)`` bits."""
    bits = _float32(magnitudes, images).round().clamp_(0, 8)
    mask = 256.0 - torch.pow(2.0, 8.0 - bits)  # 0b11..100..: `bits` ones, exact in float
    return images & _per_image(mask)


def solarize(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """:func:`evoaug.ops._color.solarize` on uint8: ``255 - x`` at or above the threshold.

    The float kernel compares ``x / 255`` (float32) with the threshold; that is monotone in the
    level, so it inverts exactly the levels from the first one that compares at or above it.
    """
    t = _float32(magnitudes, images)
    levels = _levels(images.device)
    # The first level at or above t (256: none; a threshold of 1 inverts nothing).
    first = torch.searchsorted(levels, torch.where(t < 1.0, t, 2.0))
    bound = _per_image(first.clamp(max=255))
    # below = 1 where x < first (x < bound, or first = 256), else 0: arithmetic, no compares
    below = torch.minimum(images, bound)
    torch.sub(bound, below, out=below).clamp_(max=1).bitwise_or_(_per_image(first == 256))
    # below - 1 wraps to 255 exactly where x is inverted: x ^ 255 == 255 - x
    return below.sub_(1).bitwise_xor_(images)


def equalize(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """:func:`evoaug.ops._color.equalize` on uint8: one lookup table per channel."""
    b, c, h, w = images.shape
    equalized, _ = equalize_levels(images.reshape(b * c, h * w))
    return equalized.view(b, c, h, w)


def invert(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """:func:`evoaug.ops._color.invert` on uint8: ``255 - x``."""
    return images.bitwise_not()
