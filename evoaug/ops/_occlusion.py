"""Occlusion kernels: Cutout (DeVries & Taylor, 2017)."""

from __future__ import annotations

import torch

from evoaug.ops._random import uniform

__all__ = ["cutout"]

FILL = 0.5  # mid-gray, as AutoAugment's Cutout (fill 128 on 8-bit images)


def cutout(
    images: torch.Tensor, magnitudes: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Fill a square of side ``magnitude`` times the shorter image side with mid-gray.

    The square's centre is uniform over the image, so it may be clipped at the border, as in the
    Cutout paper.
    """
    b, _, h, w = images.shape
    side = magnitudes.to(device=images.device, dtype=images.dtype).abs() * min(h, w)
    # Drawn in float32 whatever the images' dtype, so a seed gives the same squares for all.
    centre = uniform((b, 2), generator, images.device).to(images.dtype)
    cy = (centre[:, 0] * h).view(b, 1, 1)
    cx = (centre[:, 1] * w).view(b, 1, 1)
    half = (side / 2).view(b, 1, 1)
    ys = torch.arange(h, device=images.device, dtype=images.dtype).view(1, h, 1) + 0.5
    xs = torch.arange(w, device=images.device, dtype=images.dtype).view(1, 1, w) + 0.5
    mask = ((ys - cy).abs() < half) & ((xs - cx).abs() < half)
    return torch.where(mask.unsqueeze(1), torch.full_like(images, FILL), images)
