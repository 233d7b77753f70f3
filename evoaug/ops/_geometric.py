"""Geometric kernels: per-sample affine and projective warps, flips.

Every warp builds one inverse matrix per image (output pixel -> input pixel, in pixel units
centred on the image) and resamples the whole batch with a single ``grid_sample`` call, so the
cost does not depend on how many different magnitudes the batch holds. Conventions follow
torchvision's ``F.affine``: shears are anchored at the top-left corner, rotations turn
counter-clockwise about the centre, uncovered pixels are filled with 0.

Centred pixel units: the image spans ``[-W/2, W/2] x [-H/2, H/2]``, pixel ``(i, j)`` has its
centre at ``(j + 0.5 - W/2, i + 0.5 - H/2)``, y points down. torchvision's coordinates are these
plus ``(W/2, H/2)``. Uncovered pixels are zero-padded by ``grid_sample``, which equals
torchvision with ``fill=None``; torchvision's ``fill=0`` multiplies the border pixels by their
coverage a second time, so it is darker along the edges of the warped image.

The affine ops are built from matrix functions ``fn(magnitudes [B], height, width) -> [B, 2, 3]``
(``shear_x_matrix`` ...): the kernel is ``warp_affine(images, fn(magnitudes, H, W))``, and the
op table registers the same function as the op's ``affine``, so that a policy can warp the images
of several affine ops with one ``warp_affine`` call.

Every warp interpolates bilinearly (the default) or takes the nearest pixel
(``interpolation="nearest"``, torchvision's default in its auto-augment transforms). Bilinear
weights can sum to one ulp above 1, so bilinear warps clamp their output to ``[0, 1]``. The
nearest affine warp is a gather of the source pixels: it copies values, so it works on ``uint8``
images as they are, and a ``uint8`` image warped gives exactly the bytes of its float copy
warped (both compute the source positions in float32). Its source pixel is the one whose centre
is nearest, a tie going to the lower-right one; ``grid_sample``'s nearest mode (which
torchvision uses) rounds ties to even instead, so the two can differ on those pixels only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from evoaug.ops._random import uniform

__all__ = [
    "INTERPOLATIONS",
    "Interpolation",
    "hflip",
    "perspective",
    "rotate",
    "rotate_matrix",
    "shear_x",
    "shear_x_matrix",
    "shear_y",
    "shear_y_matrix",
    "translate_x",
    "translate_x_matrix",
    "translate_y",
    "translate_y_matrix",
    "vflip",
    "warp_affine",
    "warp_nearest",
    "warp_perspective",
    "zoom",
    "zoom_matrix",
]

Interpolation = Literal["bilinear", "nearest"]
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "nearest")


def _pixel_grid(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred pixel coordinates ``(x, y)`` of every output pixel, each ``[H, W]``."""
    h, w = images.shape[-2:]
    ys = torch.arange(h, device=images.device, dtype=images.dtype) + 0.5 - h / 2
    xs = torch.arange(w, device=images.device, dtype=images.dtype) + 0.5 - w / 2
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return x, y


def _magnitudes(magnitudes: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per-image magnitudes ``[B]`` on the images' device, in their dtype."""
    return magnitudes.to(device=images.device, dtype=images.dtype)


def _resample(
    images: torch.Tensor, grid: torch.Tensor, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """``grid_sample`` with zero padding; bilinear output clamped to ``[0, 1]`` (rounding)."""
    out = F.grid_sample(images, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return out.clamp_(0.0, 1.0) if interpolation == "bilinear" else out


def _sample(
    images: torch.Tensor,
    src_x: torch.Tensor,
    src_y: torch.Tensor,
    interpolation: Interpolation = "bilinear",
) -> torch.Tensor:
    """Resampling at centred pixel coordinates ``[B, H, W]``, zeros outside."""
    h, w = images.shape[-2:]
    grid = torch.stack((src_x / (w / 2), src_y / (h / 2)), dim=-1)
    return _resample(images, grid, interpolation)


def warp_affine(
    images: torch.Tensor,
    matrices: torch.Tensor,
    *,
    interpolation: Interpolation = "bilinear",
) -> torch.Tensor:
    """Warp each image by its inverse affine matrix ``[B, 2, 3]`` in centred pixel units.

    ``matrices[b]`` maps an output pixel ``(x, y, 1)`` to the input pixel it samples.
    ``"bilinear"`` needs float images; ``"nearest"`` also warps ``uint8`` images (computing
    positions in float32, as for float32 images, so the bytes equal the float warp's).
    """
    if interpolation == "nearest":
        return warp_nearest(images, matrices)
    b = images.shape[0]
    if matrices.dtype != images.dtype or matrices.device != images.device:
        matrices = matrices.to(device=images.device, dtype=images.dtype)
    m0, m1, m2 = matrices.view(b, 2, 3, 1, 1).unbind(2)
    x, y, half = _coordinates(*images.shape[-2:], images.device, images.dtype)
    # Source position of every output pixel, `(m[r, 0] * x + m[r, 1] * y + m[r, 2]) / half` in
    # this order, by broadcasting (cheaper than affine_grid's bmm), in grid_sample's normalized
    # coordinates (align_corners=False: the edges are at +-1): [B, 2, 1, W] + [B, 2, H, 1]
    # gives both coordinates as planes [B, 2, H, W], which grid_sample reads as [B, H, W, 2].
    src = m0 * x + m1 * y
    return _resample(images, src.add_(m2).div_(half).permute(0, 2, 3, 1))


def warp_nearest(
    images: torch.Tensor, matrices: torch.Tensor, *, out: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`warp_affine` with ``"nearest"``: gather each output pixel's nearest source pixel.

    The images get a border of zeros one pixel wide, and every output pixel reads one pixel of
    the bordered image: its nearest source pixel, or the border when that lies outside.
    ``out``, a contiguous tensor of the images' shape and dtype (``images`` itself is allowed),
    receives the result.
    """
    b, c, h, w = images.shape
    dtype = images.dtype if images.dtype in (torch.float32, torch.float64) else torch.float32
    if matrices.dtype != dtype or matrices.device != images.device:
        matrices = matrices.to(device=images.device, dtype=dtype)
    # Finite entries give finite positions, so that every index below is valid: NaN and
    # infinities become far away (the border).
    matrices = matrices.nan_to_num(nan=_FAR, posinf=_FAR, neginf=-_FAR).clamp_(-_FAR, _FAR)
    m0, m1, m2 = matrices.view(b, 2, 3, 1, 1).unbind(2)
    x, y, _ = _coordinates(h, w, images.device, dtype)
    # Centred source position s -> column/row of the bordered image, s + side / 2 - 0.5 + 1,
    # plus 0.5 so that `floor` rounds to the nearest pixel: planes [B, 2, H, W] as in the
    # bilinear warp; positions outside the image are clamped to the border.
    src = m0 * x + m1 * y
    src.add_(m2.add(_offset(h, w, images.device, dtype)))
    src[:, 0].clamp_(0.0, w + 1.0)
    src[:, 1].clamp_(0.0, h + 1.0)
    src.floor_()
    if (h + 2) * (w + 2) <= _EXACT_FLOAT_INDEX:  # row * (w + 2) + column is exact
        index = src[:, 1].mul_(w + 2).add_(src[:, 0]).to(torch.int64)
    else:
        cells = src.to(torch.int64)
        index = cells[:, 1].mul_(w + 2).add_(cells[:, 0])
    bordered = F.pad(images, (1, 1, 1, 1)).view(b, c, (h + 2) * (w + 2))
    index = index.view(b, 1, h * w).expand(b, c, h * w)
    if out is None:
        return bordered.gather(2, index).view(b, c, h, w)
    torch.gather(bordered, 2, index, out=out.view(b, c, h * w))
    return out


@functools.lru_cache(maxsize=32)
def _coordinates(
    h: int, w: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Centred pixel coordinates ``x`` ``[W]`` and ``y`` ``[H, 1]``, and ``half`` ``[2, 1, 1]``.

    Cached per size, device and dtype (small, read-only): a warp of a small batch would
    otherwise spend a good part of its time making them. Made outside any inference mode, so
    that they can be used anywhere.
    """
    with torch.inference_mode(False):
        x = torch.arange(w, device=device, dtype=dtype) + 0.5 - w / 2
        y = (torch.arange(h, device=device, dtype=dtype) + 0.5 - h / 2).view(h, 1)
        half = torch.tensor([w / 2, h / 2], device=device, dtype=dtype).view(2, 1, 1)
    return x, y, half


_EXACT_FLOAT_INDEX = 1 << 24  # float32 holds every integer up to this
_FAR = 1e30  # far outside any image, and times a coordinate still finite in float32


@functools.lru_cache(maxsize=32)
def _offset(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[2, 1, 1]``: from a centred position (x, y) to the bordered image plus one half.

    Cached per size, device and dtype (read-only, made outside any inference mode).
    """
    with torch.inference_mode(False):
        return torch.tensor([w / 2 + 1.0, h / 2 + 1.0], device=device, dtype=dtype).view(2, 1, 1)


_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_ZERO = (0.0,) * 6


@functools.lru_cache(maxsize=64)
def _entries(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Six matrix entries as a tensor, cached (small, read-only, made outside inference mode)."""
    with torch.inference_mode(False):
        return torch.tensor(values, device=device, dtype=dtype)


def _linear(
    magnitudes: torch.Tensor, constant: tuple[float, ...], slope: tuple[float, ...]
) -> torch.Tensor:
    """Matrices ``[B, 2, 3]`` whose entries (row-major) are ``constant + magnitude * slope``.

    One fused multiply-add for the whole batch: building an op's matrices is a few µs instead
    of a handful of small tensor calls, which matters in a policy call on small images.
    """
    device, dtype = magnitudes.device, magnitudes.dtype
    base, step = _entries(constant, device, dtype), _entries(slope, device, dtype)
    return torch.addcmul(base, magnitudes.unsqueeze(-1), step).view(-1, 2, 3)


def shear_x_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse matrices ``[B, 2, 3]`` of :func:`shear_x`."""
    return _linear(magnitudes, _IDENTITY, (0.0, 1.0, height / 2, 0.0, 0.0, 0.0))


def shear_y_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse matrices ``[B, 2, 3]`` of :func:`shear_y`."""
    return _linear(magnitudes, _IDENTITY, (0.0, 0.0, 0.0, 1.0, 0.0, width / 2))


def translate_x_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse matrices ``[B, 2, 3]`` of :func:`translate_x`."""
    return _linear(magnitudes, _IDENTITY, (0.0, 0.0, -float(width), 0.0, 0.0, 0.0))


def translate_y_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse matrices ``[B, 2, 3]`` of :func:`translate_y`."""
    return _linear(magnitudes, _IDENTITY, (0.0, 0.0, 0.0, 0.0, 0.0, -float(height)))


def rotate_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse matrices ``[B, 2, 3]`` of :func:`rotate`."""
    theta = torch.deg2rad(magnitudes)
    cosines = _linear(torch.cos(theta), _ZERO, _IDENTITY)  # [cos, 0, 0, 0, cos, 0]
    sines = _entries((0.0, -1.0, 0.0, 1.0, 0.0, 0.0), magnitudes.device, magnitudes.dtype)
    return torch.addcmul(cosines.view(-1, 6), torch.sin(theta).unsqueeze(-1), sines).view(-1, 2, 3)


def zoom_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse matrices ``[B, 2, 3]`` of :func:`zoom`."""
    inverse = 1.0 / (1.0 + magnitudes).clamp_min(1e-3)
    return _linear(inverse, _ZERO, _IDENTITY)


def _warp_by(
    matrix: Callable[[torch.Tensor, int, int], torch.Tensor],
    images: torch.Tensor,
    magnitudes: torch.Tensor,
    interpolation: Interpolation,
) -> torch.Tensor:
    """Warp ``images`` by ``matrix(magnitudes, H, W)``, magnitudes in the images' dtype."""
    h, w = images.shape[-2:]
    matrices = matrix(_magnitudes(magnitudes, images), h, w)
    return warp_affine(images, matrices, interpolation=interpolation)


def shear_x(
    images: torch.Tensor, magnitudes: torch.Tensor, *, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """Shear along x by ``magnitudes`` (tan of the shear angle), anchored at the top edge."""
    return _warp_by(shear_x_matrix, images, magnitudes, interpolation)


def shear_y(
    images: torch.Tensor, magnitudes: torch.Tensor, *, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """Shear along y by ``magnitudes`` (tan of the shear angle), anchored at the left edge."""
    return _warp_by(shear_y_matrix, images, magnitudes, interpolation)


def translate_x(
    images: torch.Tensor, magnitudes: torch.Tensor, *, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """Shift right by ``magnitudes`` times the image width (negative shifts left)."""
    return _warp_by(translate_x_matrix, images, magnitudes, interpolation)


def translate_y(
    images: torch.Tensor, magnitudes: torch.Tensor, *, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """Shift down by ``magnitudes`` times the image height (negative shifts up)."""
    return _warp_by(translate_y_matrix, images, magnitudes, interpolation)


def rotate(
    images: torch.Tensor, magnitudes: torch.Tensor, *, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """Rotate counter-clockwise by ``magnitudes`` degrees about the image centre."""
    return _warp_by(rotate_matrix, images, magnitudes, interpolation)


def zoom(
    images: torch.Tensor, magnitudes: torch.Tensor, *, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """Scale about the centre by ``1 + magnitudes`` (positive zooms in, negative zooms out)."""
    return _warp_by(zoom_matrix, images, magnitudes, interpolation)


def hflip(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Mirror left-right (no magnitude)."""
    return images.flip(-1)


def vflip(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Mirror top-bottom (no magnitude)."""
    return images.flip(-2)


def _homographies(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Solve for ``[B, 3, 3]`` homographies mapping ``src`` corners ``[B, 4, 2]`` to ``dst``."""
    b = src.shape[0]
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], dim=-1)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], dim=-1)
    a = torch.cat([rows_u, rows_v], dim=1)  # [B, 8, 8]
    rhs = torch.cat([u, v], dim=1).unsqueeze(-1)  # [B, 8, 1]
    # solve_ex: the same solution without reading the error flags back on the host (the corner
    # systems are never singular), so that a warp makes no host synchronization.
    coeffs = torch.linalg.solve_ex(a.double(), rhs.double()).result.squeeze(-1).to(src.dtype)
    return torch.cat([coeffs, torch.ones(b, 1, dtype=src.dtype, device=src.device)], 1).view(
        b, 3, 3
    )


def warp_perspective(
    images: torch.Tensor, corners: torch.Tensor, *, interpolation: Interpolation = "bilinear"
) -> torch.Tensor:
    """Warp so that the image corners move to ``corners`` ``[B, 4, 2]`` (centred pixel units).

    Corners are ordered top-left, top-right, bottom-right, bottom-left, as ``(x, y)``; the
    unwarped corners are the image's outer edges ``(-W/2, -H/2) ... (-W/2, H/2)``. This equals
    torchvision's ``F.perspective(img, startpoints=[[0, 0], [W, 0], [W, H], [0, H]],
    endpoints=corners + (W/2, H/2))``; note that torchvision's ``RandomPerspective`` starts from
    ``[W - 1, H - 1]`` instead, a fraction of a pixel inside the image.
    """
    h, w = images.shape[-2:]
    base = torch.tensor(
        [[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]],
        device=images.device,
        dtype=images.dtype,
    ).expand_as(corners)
    # Inverse map: output (moved corners) -> input (original corners).
    hom = _homographies(corners.to(device=images.device, dtype=images.dtype), base)
    x, y = _pixel_grid(images)
    pts = torch.stack([x, y, torch.ones_like(x)], dim=-1).view(1, -1, 3)
    src = pts @ hom.transpose(1, 2)  # [B, HW, 3]
    denom = src[..., 2].clamp_min(1e-6)
    src_x = (src[..., 0] / denom).view(-1, h, w)
    src_y = (src[..., 1] / denom).view(-1, h, w)
    return _sample(images, src_x, src_y, interpolation)


def perspective(
    images: torch.Tensor,
    magnitudes: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    interpolation: Interpolation = "bilinear",
) -> torch.Tensor:
    """Move each corner inwards by a random fraction up to ``magnitudes / 2`` of the image side.

    Same distortion model as torchvision's ``RandomPerspective(distortion_scale=magnitude)``.
    """
    h, w = images.shape[-2:]
    b = images.shape[0]
    mags = _magnitudes(magnitudes, images).abs().view(b, 1, 1)
    # Drawn in float32 whatever the images' dtype, so a seed gives the same corners for all.
    u = uniform((b, 4, 2), generator, images.device).to(images.dtype)
    half = torch.tensor([w / 2, h / 2], device=images.device, dtype=images.dtype)
    inward = torch.tensor(
        [[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]],
        device=images.device,
        dtype=images.dtype,
    )
    base = -inward * half
    corners = base + inward * u * mags * half
    return warp_perspective(images, corners, interpolation=interpolation)
