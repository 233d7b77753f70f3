"""Photometric kernels with one parameter per image, vectorized over the batch.

Formulas follow torchvision's ``transforms.v2.functional`` (blends clamp to ``[0, 1]``, grayscale
uses ITU-R 601 luma weights) so that each op agrees with its torchvision counterpart; the
differences are listed in the op table's docs. Images are float ``[B, C, H, W]`` in ``[0, 1]``
with 1 or 3 channels; colour-only ops leave 1-channel images unchanged.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from evoaug.ops._random import normal

__all__ = [
    "autocontrast",
    "brightness",
    "color",
    "contrast",
    "equalize",
    "equalize_levels",
    "equalize_lut",
    "gaussian_blur",
    "gaussian_blur_bounded",
    "gaussian_noise",
    "grayscale",
    "hue",
    "identity",
    "invert",
    "posterize",
    "sharpness",
    "solarize",
]

_LUMA = (0.2989, 0.587, 0.114)


def _per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-image values ``[B]`` to broadcast against ``[B, C, H, W]``."""
    if values.dtype != like.dtype or values.device != like.device:
        values = values.to(device=like.device, dtype=like.dtype)
    return values.view(-1, 1, 1, 1)


def _gray(images: torch.Tensor) -> torch.Tensor:
    """Luma ``[B, 1, H, W]`` of RGB images; 1-channel images are returned as they are."""
    if images.shape[1] == 1:
        return images
    r, g, b = images.unbind(1)
    # torchvision's own order of operations; three ops where `a * r + b * g + c * b` is five
    return r.mul(_LUMA[0]).add_(g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2]).unsqueeze(1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor * images + (1 - factor) * other``, clamped: one ``lerp`` from ``other``."""
    return torch.lerp(other, images, _per_image(factor, images)).clamp_(0.0, 1.0)


def identity(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Return the images unchanged."""
    return images


def brightness(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Multiply by ``1 + magnitude`` (blend with black)."""
    return (images * _per_image(1.0 + magnitudes, images)).clamp_(0.0, 1.0)


def contrast(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean luma by ``1 + magnitude``."""
    mean = _gray(images).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(images, mean, 1.0 + magnitudes)


def color(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Saturation: blend with the grayscale image by ``1 + magnitude``."""
    if images.shape[1] == 1:
        return images
    return _blend(images, _gray(images), 1.0 + magnitudes)


def sharpness(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Blend with a 3x3 smoothed image by ``1 + magnitude``; the border pixels are kept."""
    h, w = images.shape[-2:]
    if h <= 2 or w <= 2:
        return images
    # PIL's smoothing kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 is the 3x3 box sum / 13
    # plus 4/13 of the centre; the box sum as two separable sums of shifted slices runs 4-10x
    # faster on the CPU than a depthwise conv2d, and agrees with it to float rounding.
    rows = images[..., :-2] + images[..., 1:-1]
    rows += images[..., 2:]
    blurred = rows[..., :-2, :] + rows[..., 1:-1, :]
    blurred += rows[..., 2:, :]
    blurred.mul_(1.0 / 13.0).add_(images[..., 1:-1, 1:-1], alpha=4.0 / 13.0)
    out = images.clone()
    inner = out[..., 1:-1, 1:-1]
    inner.add_((blurred - inner) * _per_image(-magnitudes, images))
    return out.clamp_(0.0, 1.0)


def posterize(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Keep ``round(magnitude)`` bits of each 8-bit intensity (8 bits: unchanged)."""
    bits = magnitudes.to(device=images.device, dtype=images.dtype).round().clamp(0, 8)
    step = torch.pow(2.0, 8.0 - bits).view(-1, 1, 1, 1)  # 2**(8 - bits), exact in float
    # floor(level / step) * step == (level >> shift) << shift on integer levels 0..255, in float
    levels = (images * 255.0).round_().clamp_(0.0, 255.0)
    out = levels.div_(step).floor_().mul_(step).div_(255.0)
    return torch.where(step == 1.0, images, out)


def solarize(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Invert the pixels at or above the threshold ``magnitude``; a threshold of 1 is a no-op.

    By design this differs from torchvision's ``F.solarize`` at threshold 1 only, which inverts
    pure-white pixels: here level 0 (threshold 1) must be the identity, as for every op.
    """
    t = _per_image(magnitudes, images)
    return torch.where((images >= t) & (t < 1.0), 1.0 - images, images)


def autocontrast(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Stretch each channel to span ``[0, 1]``; constant channels are left unchanged."""
    low = images.amin(dim=(-2, -1), keepdim=True)  # on CPU ~10x faster than one aminmax
    high = images.amax(dim=(-2, -1), keepdim=True)
    span = high - low
    flat = span <= 0
    scale = 1.0 / span.masked_fill_(flat, 1.0)  # flat channels: (x - 0) * 1
    return (images - low.masked_fill_(flat, 0.0)).mul_(scale).clamp_(0.0, 1.0)


def equalize_lut(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's equalization lookup tables of 8-bit ``levels`` ``[..., N]`` (int64), one per row.

    The counts and the floors of their quotients are computed in float64, which holds them
    exactly (any image of fewer than 2**52 pixels) and divides much faster than int64.

    Returns:
        The tables ``[..., 256]`` (float64, integer levels 0..255) and each row's step
        ``[..., 1]``; a row whose step is 0 (one level only, or nearly) is left unchanged.
    """
    n = levels.shape[-1]
    hist = torch.zeros(*levels.shape[:-1], 256, dtype=torch.int64, device=levels.device)
    hist = hist.scatter_add_(-1, levels, torch.ones_like(levels)).double()
    cum = hist.cumsum(-1)
    last = levels.amax(-1, keepdim=True)  # the channel's brightest level
    step = (n - hist.gather(-1, last)).div_(255.0).floor_()
    # lut[k] = (cum[k - 1] + step // 2) // step, and lut[0] = 0: `cum - hist` is cum[k - 1];
    # true division then floor (exact here) is ~10x faster than a floor-mode division
    lut = (cum - hist).add_((step / 2.0).floor_()).div_(step.clamp_min(1.0)).floor_()
    return lut.clamp_(0.0, 255.0), step


# Channels are equalized in chunks of about this many pixels: their int64 levels (2 MB) stay in
# cache. Converting a 224x224 batch's levels to int64 at once and scattering and gathering over
# them is about 4x slower on the CPU.
_EQUALIZE_ELEMENTS = 1 << 18


def equalize_levels(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Equalize 8-bit ``levels`` ``[R, N]`` (uint8, one row per channel) with PIL's tables.

    Returns:
        The equalized levels ``[R, N]`` (uint8) and a mask ``[R]`` of the rows left unchanged
        (step 0: one level only, or nearly), whose output equals their input.
    """
    rows, n = levels.shape
    out = torch.empty_like(levels)
    unchanged = torch.empty(rows, dtype=torch.bool, device=levels.device)
    identity = torch.arange(256, dtype=torch.float64, device=levels.device)
    per = max(1, _EQUALIZE_ELEMENTS // max(n, 1))
    for start in range(0, rows, per):
        part = levels[start : start + per].long()
        lut, step = equalize_lut(part)
        flat_channels = step == 0
        table = torch.where(flat_channels, identity, lut).to(torch.uint8)
        torch.gather(table, -1, part, out=out[start : start + per])
        unchanged[start : start + per] = flat_channels.view(-1)
    return out, unchanged


def equalize(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Histogram-equalize each channel on 8-bit levels (PIL's lookup table, as torchvision)."""
    b, c, h, w = images.shape
    levels = (images * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    equalized, unchanged = equalize_levels(levels.reshape(b * c, h * w))
    out = equalized.view(b, c, h, w).to(images.dtype) / 255.0
    return torch.where(unchanged.view(b, c, 1, 1), images, out)


def invert(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Return ``1 - images``."""
    return 1.0 - images


def _rgb_to_hsv(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = images.unbind(1)
    maxc, _ = images.max(1)
    minc, _ = images.min(1)
    flat = maxc == minc
    chroma = maxc - minc
    ones = torch.ones_like(maxc)
    sat = chroma / torch.where(flat, ones, maxc)
    div = torch.where(flat, ones, chroma)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return h, sat, maxc


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    h6 = h * 6.0
    i = torch.floor(h6)
    f = h6 - i
    sector = i.long().remainder(6).unsqueeze(1)  # [B, 1, H, W]
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    # Rows: the (r, g, b) values of each of the six hue sectors.
    table = torch.stack(
        [
            torch.stack([v, q, p, p, t, v], dim=1),
            torch.stack([t, v, v, q, p, p], dim=1),
            torch.stack([p, p, t, v, v, q], dim=1),
        ],
        dim=1,
    )  # [B, 3, 6, H, W]
    index = sector.unsqueeze(1).expand(-1, 3, 1, -1, -1)
    return table.gather(2, index).squeeze(2)


def hue(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Rotate the hue by ``magnitude`` turns (``0.5`` is the opposite colour)."""
    if images.shape[1] == 1:
        return images
    h, s, v = _rgb_to_hsv(images)
    shift = magnitudes.to(device=images.device, dtype=images.dtype).view(-1, 1, 1)
    out = _hsv_to_rgb(torch.remainder(h + shift, 1.0), s, v)
    return torch.where(shift.unsqueeze(1) == 0, images, out)


def gaussian_blur(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with standard deviation ``magnitude`` pixels (reflect padding).

    Each image's kernel has radius ``ceil(3 * sigma)``, i.e. torchvision's ``gaussian_blur`` with
    ``kernel_size = 2 * ceil(3 * sigma) + 1``, capped at one pixel less than the shorter side
    (reflect padding cannot reach further). The batch shares one convolution, as wide as the
    largest sigma needs (read on the host), whose taps beyond an image's own radius are zero, so
    every image gets exactly the blur it would get alone. A sigma of 0 gives a delta kernel,
    i.e. the image unchanged.
    """
    sigma = magnitudes.to(device=images.device, dtype=images.dtype).abs()
    max_sigma = float(sigma.max()) if sigma.numel() else 0.0
    if max_sigma <= 0.0:
        return images
    return _blur(images, sigma, max_sigma)


def gaussian_blur_bounded(
    images: torch.Tensor, magnitudes: torch.Tensor, bound: float
) -> torch.Tensor:
    """:func:`gaussian_blur` for ``|magnitudes| <= bound``, its convolution sized from ``bound``.

    Nothing depends on the magnitudes' values (no host synchronization; the shapes follow from
    the images' shape and ``bound``), and an image gets the same bits whatever else is in the
    batch. With ``bound`` the largest ``|magnitude|``, the pixels of :func:`gaussian_blur`;
    with a larger one, the same up to rounding (the extra taps are zero). The engine calls it.
    """
    sigma = magnitudes.to(device=images.device, dtype=images.dtype).abs()
    return _blur(images, sigma, bound) if bound > 0.0 else images


# Images of at most this many pixels blur by two batched matrix products (one per axis, with
# the reflect padding folded into a banded matrix per image) instead of two grouped
# convolutions: on the CPU a grouped convolution costs ~100 us of setup whatever its size, a
# blur of one 32x32 image took 430 us, and the products take a fraction of that. Above it the
# products' n**3 work outgrows the convolutions'. The choice depends on the image size only,
# so an image gets the same bits on either execution path.
_BANDED_PIXELS = 64 * 64


def _blur(images: torch.Tensor, sigma: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """Blur image ``i`` by ``sigma[i]``, with a kernel wide enough for ``max_sigma``."""
    b, c, h, w = images.shape
    limit = min(h - 1, w - 1)
    half = min(math.ceil(3.0 * max_sigma), limit)
    if half < 1:
        return images
    offsets = torch.arange(-half, half + 1, device=images.device, dtype=images.dtype)
    radius = torch.ceil(3.0 * sigma).clamp_max(limit).view(-1, 1)
    safe = sigma.clamp_min(1e-6).view(-1, 1)
    kernel = torch.exp(-0.5 * (offsets.view(1, -1) / safe) ** 2)
    kernel = torch.where(offsets.abs().view(1, -1) <= radius, kernel, torch.zeros_like(kernel))
    kernel = torch.where(sigma.view(-1, 1) > 0, kernel, (offsets == 0).to(images.dtype))
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # [B, k]
    if h * w <= _BANDED_PIXELS:
        across = _banded(kernel, w, half).transpose(1, 2).unsqueeze(1)  # [B, 1, W, W]
        down = across.transpose(2, 3) if h == w else _banded(kernel, h, half).unsqueeze(1)
        # The normalized kernel can sum to one ulp above 1.
        return torch.matmul(down, torch.matmul(images, across)).clamp_(0.0, 1.0)
    kernel = kernel.repeat_interleave(c, dim=0)  # [B*C, k]
    k = kernel.shape[1]
    x = F.pad(images.reshape(1, b * c, h, w), (half, half, half, half), mode="reflect")
    x = F.conv2d(x, kernel.view(b * c, 1, 1, k), groups=b * c)
    x = F.conv2d(x, kernel.view(b * c, 1, k, 1), groups=b * c)
    return x.view(b, c, h, w).clamp_(0.0, 1.0)


def _banded(kernel: torch.Tensor, n: int, half: int) -> torch.Tensor:
    """``[B, n, n]``: row ``i`` holds the taps that output ``i`` reads, reflect padding folded in.

    ``out[i] = sum_t kernel[t] * x[reflect(i + t - half)]``, as a convolution of the
    reflect-padded signal computes it (``half < n``: one reflection reaches every tap). One
    product with a cached 0/1 basis; no scatter, so it is deterministic on every device.
    """
    b = kernel.shape[0]
    return (kernel @ _band_basis(n, half, kernel.device, kernel.dtype)).view(b, n, n)


@functools.lru_cache(maxsize=32)
def _band_basis(n: int, half: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[2 * half + 1, n * n]``: tap ``t``'s 1s at ``(i, reflect(i + t - half))``, flattened.

    Cached per size (read-only, made outside any inference mode): 0.2 MB at 64 pixels and
    the widest kernel.
    """
    with torch.inference_mode(False):
        taps = torch.arange(-half, half + 1, device=device)
        source = torch.arange(n, device=device).view(1, n) + taps.view(-1, 1)  # [k, n]
        source = torch.where(source < 0, -source, source)
        source = torch.where(source > n - 1, 2 * (n - 1) - source, source)
        basis = torch.zeros(len(taps), n, n, device=device, dtype=dtype)
        basis.scatter_(2, source.unsqueeze(2), 1.0)
        return basis.view(len(taps), n * n)


def gaussian_noise(
    images: torch.Tensor, magnitudes: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Add zero-mean Gaussian noise with standard deviation ``magnitude``, then clamp.

    The noise is drawn in float32 whatever the images' dtype, so a seed gives the same noise for
    float16, float32 and float64 images.
    """
    noise = normal(tuple(images.shape), generator, images.device).to(images.dtype)
    return (images + noise * _per_image(magnitudes.abs(), images)).clamp_(0.0, 1.0)


def grayscale(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    """Replace colour by luma, keeping the channel count."""
    if images.shape[1] == 1:
        return images
    return _gray(images).expand_as(images).contiguous()
