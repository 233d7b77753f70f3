"""The op table: every built-in op, declared once with its magnitude range.

Ranges span torchvision v2's TrivialAugmentWide space, which contains AutoAugment's and
RandAugment's (Cubuk et al. 2019, 2020; Müller & Hutter 2021), so the published policies are exact
points of this space: a preset stores ``level = magnitude_published / high``. Ops torchvision's
auto-augment lacks use the range of the matching torchvision transform's common setting.
Translations are fractions of the image side, so a policy means the same at every resolution.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from evoaug.ops import _color as C
from evoaug.ops import _geometric as G
from evoaug.ops import _occlusion as O
from evoaug.ops import _uint8 as U
from evoaug.ops._registry import OpSpec, get_op, register_op

__all__ = ["BUILTIN_OPS", "BoundedFn", "bounded_kernel", "is_builtin"]

BoundedFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]

# name, kernel, low, high, signed, description
_TABLE = (
    ("Identity", C.identity, 0.0, 0.0, False, "no change"),
    # Shear: tan of the shear angle; AutoAugment 0.3, TrivialAugmentWide 0.99.
    ("ShearX", G.shear_x, 0.0, 0.99, True, "horizontal shear, tan(angle)"),
    ("ShearY", G.shear_y, 0.0, 0.99, True, "vertical shear, tan(angle)"),
    # Translate: fraction of the side; AutoAugment 150/331 = 0.45; TrivialAugmentWide's 32 px
    # is the whole side of a 32x32 image.
    ("TranslateX", G.translate_x, 0.0, 1.0, True, "horizontal shift, fraction of width"),
    ("TranslateY", G.translate_y, 0.0, 1.0, True, "vertical shift, fraction of height"),
    # Rotate: degrees; AutoAugment 30, TrivialAugmentWide 135.
    ("Rotate", G.rotate, 0.0, 135.0, True, "rotation in degrees, counter-clockwise"),
    ("HorizontalFlip", G.hflip, 0.0, 0.0, False, "mirror left-right"),
    ("VerticalFlip", G.vflip, 0.0, 0.0, False, "mirror top-bottom"),
    # Zoom: scale factor 1 + m, so 0.6x to 1.4x.
    ("Zoom", G.zoom, 0.0, 0.4, True, "scale about the centre by 1 + m"),
    # Perspective: torchvision RandomPerspective's default distortion_scale is 0.5.
    ("Perspective", G.perspective, 0.0, 0.5, False, "random corner shifts up to m/2 of the side"),
    # Enhance ops: factor 1 + m; AutoAugment 0.9, TrivialAugmentWide 0.99.
    ("Brightness", C.brightness, 0.0, 0.99, True, "brightness factor 1 + m"),
    ("Contrast", C.contrast, 0.0, 0.99, True, "contrast factor 1 + m"),
    ("Color", C.color, 0.0, 0.99, True, "saturation factor 1 + m"),
    ("Sharpness", C.sharpness, 0.0, 0.99, True, "sharpness factor 1 + m"),
    # Posterize: bits kept; AutoAugment 8..4, TrivialAugmentWide 8..2.
    ("Posterize", C.posterize, 8.0, 2.0, False, "keep round(m) bits per channel"),
    # Solarize: threshold, from 1 (no-op) to 0 (invert everything).
    ("Solarize", C.solarize, 1.0, 0.0, False, "invert pixels at or above threshold m"),
    ("AutoContrast", C.autocontrast, 0.0, 0.0, False, "stretch each channel to [0, 1]"),
    ("Equalize", C.equalize, 0.0, 0.0, False, "histogram equalization per channel"),
    ("Invert", C.invert, 0.0, 0.0, False, "1 - x"),
    # Hue: turns of the colour wheel; ColorJitter allows up to 0.5.
    ("Hue", C.hue, 0.0, 0.5, True, "hue rotation in turns"),
    # Blur: sigma in pixels; torchvision GaussianBlur's common sigma=(0.1, 2.0).
    ("GaussianBlur", C.gaussian_blur, 0.0, 2.0, False, "Gaussian blur, sigma in pixels"),
    # Noise: standard deviation; torchvision v2 GaussianNoise defaults to 0.1.
    ("GaussianNoise", C.gaussian_noise, 0.0, 0.2, False, "additive Gaussian noise, std m"),
    ("Grayscale", C.grayscale, 0.0, 0.0, False, "replace colour by luma"),
    # Cutout: side as a fraction of the shorter side; DeVries & Taylor use 16 px of 32 (0.5).
    ("Cutout", O.cutout, 0.0, 0.5, False, "gray square, side m of the shorter side"),
)

# Affine ops: their kernels warp by these matrices, which policies use to fuse the warps.
_AFFINE = {
    "ShearX": G.shear_x_matrix,
    "ShearY": G.shear_y_matrix,
    "TranslateX": G.translate_x_matrix,
    "TranslateY": G.translate_y_matrix,
    "Rotate": G.rotate_matrix,
    "Zoom": G.zoom_matrix,
}

# Exact uint8 kernels: policies apply them to uint8 images without the float round trip.
_UINT8 = {
    "Posterize": U.posterize,
    "Solarize": U.solarize,
    "Equalize": U.equalize,
    "Invert": U.invert,
}

# Kernels that size their work from the magnitudes' values (read on the host): a variant sized
# from a bound on |magnitude| instead, for the engine's static path (`bounded_kernel`).
_BOUNDED: dict[object, BoundedFn] = {
    C.gaussian_blur: C.gaussian_blur_bounded,
}

for _name, _fn, _low, _high, _signed, _description in _TABLE:
    register_op(
        _name,
        low=_low,
        high=_high,
        signed=_signed,
        description=_description,
        affine=_AFFINE.get(_name),
        uint8=_UINT8.get(_name),
    )(_fn)

BUILTIN_OPS: tuple[str, ...] = tuple(row[0] for row in _TABLE)


def bounded_kernel(spec: OpSpec) -> BoundedFn | None:
    """For an op whose kernel sizes its work from its magnitudes' values, a kernel that does not.

    The returned ``kernel(images, magnitudes, bound)`` gives the pixels of ``spec``'s kernel
    for ``|magnitudes| <= bound``, sized from ``bound`` instead of the largest magnitude: no
    host synchronization, and shapes that follow from the images' shape and ``bound`` alone.
    The engine calls it, on both paths, with the largest ``|magnitude|`` a policy gives the op
    (:attr:`evoaug.augment.CompiledPolicy.bounds`). The built-in ``GaussianBlur`` has one (the
    width of its convolution); other ops, and ops registered under a built-in's name with
    another kernel, give ``None``.

    Example:
        >>> from evoaug.ops import bounded_kernel, get_op
        >>> bounded_kernel(get_op("GaussianBlur")) is not None, bounded_kernel(get_op("Invert"))
        (True, None)

    """
    return _BOUNDED.get(spec.fn)


_BUILTIN_SPECS = frozenset(get_op(name) for name in BUILTIN_OPS)


def is_builtin(spec: OpSpec) -> bool:
    """Whether ``spec`` is a built-in op as registered here (not one registered over it).

    The engine runs policies of built-in ops only with autograd off (``torch.inference_mode``):
    their kernels need no gradients and keep no tensors. A custom kernel might do either.

    Example:
        >>> from evoaug.ops import get_op, is_builtin
        >>> is_builtin(get_op("Rotate"))
        True
    """
    return spec in _BUILTIN_SPECS
