"""Export a policy to albumentations: :func:`policy_to_albumentations`.

Each op is mapped at its gene's magnitude ``m`` (:meth:`evoaug.ops.OpSpec.magnitude`) to the
albumentations 2.0 transform with the same meaning. What remains different, measured on 8-bit
images against evoaug's kernels (tests/policy/test_export.py):

| op | albumentations transform | what differs |
| --- | --- | --- |
| Identity | ``NoOp`` | nothing |
| ShearX, ShearY | ``Affine(shear=atan(m) in degrees)`` | see below |
| TranslateX, TranslateY | ``Affine(translate_percent=m)`` | shift truncated to whole pixels |
| Rotate | ``Affine(rotate=m)`` | interpolation, <= 1 level |
| Zoom | ``Affine(scale=1 + m, keep_ratio=True)`` | interpolation, <= 1 level |
| HorizontalFlip | ``HorizontalFlip`` | nothing |
| VerticalFlip | ``VerticalFlip`` | nothing |
| Brightness | ``ColorJitter(brightness=1 + m)`` | rounding, <= 1 level |
| Contrast | ``ColorJitter(contrast=1 + m)`` | rounding, <= 1 level |
| Color | ``ColorJitter(saturation=1 + m)`` | rounding, <= 1 level |
| Hue | ``ColorJitter(hue=m)`` | OpenCV's 8-bit HSV, <= 3 levels |
| Posterize | ``Posterize(num_bits=round(m))`` | nothing |
| Solarize | ``Solarize(threshold_range=m)`` | nothing |
| AutoContrast | ``AutoContrast(method="pil")`` | rounding, <= 1 level |
| Equalize | ``Equalize(mode="cv")`` | see below |
| Invert | ``InvertImg`` | nothing |
| GaussianBlur | ``GaussianBlur(sigma_limit=m)`` | kernel cut at 3.5 sigma, not 3; <= 1 level |
| GaussianNoise | ``GaussNoise(std_range=m)`` | another random stream |
| Grayscale | ``ToGray(method="weighted_average")`` | nothing |
| Cutout | ``CoarseDropout(hole_height_range=m, hole_width_range=m, fill=128)`` | see below |

- **Shear**: albumentations shears about the image centre, evoaug (like PIL and torchvision's
  AutoAugment) about the top-left corner, so albumentations' ShearX output is evoaug's shifted
  by ``m * H / 2`` pixels (ShearY: ``m * W / 2``). The exact correction depends on the image
  size, which a transform built ahead of time does not know.
- **Equalize**: OpenCV's lookup table instead of PIL's (which evoaug reproduces): a few levels
  apart on natural images, more on images with few distinct levels. albumentations'
  ``mode="pil"`` is one histogram bin off PIL and further away.
- **Cutout**: the hole always lies inside the image, while evoaug's centre is uniform over the
  image and the hole may be clipped by the border; its sides are ``m * H`` by ``m * W``, a
  square only on square images; the fill, 128, is mid-gray for ``uint8`` images only.

``Sharpness`` and ``Perspective`` have no faithful counterpart (albumentations' ``Sharpen``
cannot blur, which Sharpness does at negative magnitudes; its ``Perspective`` zooms into a random
quadrilateral instead of pulling the image's corners inwards), and neither has any op registered
with :func:`evoaug.register_op`: a policy that uses one is refused with a
:class:`~evoaug.ConfigError` rather than approximated.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evoaug.exceptions import ConfigError
from evoaug.ops import get_op
from evoaug.policy._genes import Gene, PolicyLike

if TYPE_CHECKING:
    import albumentations as A

__all__ = ["ALBUMENTATIONS_OPS", "policy_to_albumentations"]

# A builder makes the transform that applies an op with its magnitude drawn uniformly in
# [low, high] (low == high for a fixed magnitude) with probability p. It gets the albumentations
# module as its first argument, so that albumentations is imported only when a policy is exported.
_Builder = Callable[..., Any]  # (A, low, high, p[, interpolation=]) -> transform

# Cutout's fill: evoaug's 0.5 gray on 8-bit images; albumentations does not rescale it for floats.
_CUTOUT_FILL = 128
# OpenCV's interpolation flags for the policy's `interpolation` (cv2.INTER_LINEAR, INTER_NEAREST).
_CV2_INTERPOLATION = {"bilinear": 1, "nearest": 0}
# GaussianBlur divides by sigma: a uniform draw of exactly 0 would give NaN, 1e-3 is a delta kernel.
_MIN_SIGMA = 1e-3


def _fixed(name: str, **kwargs: Any) -> _Builder:
    """An albumentations transform without a magnitude."""

    def build(A: Any, low: float, high: float, p: float) -> Any:
        return getattr(A, name)(**kwargs, p=p)

    return build


def _affine(axis: str | None, field: str) -> _Builder:
    def build(A: Any, low: float, high: float, p: float, interpolation: int = 1) -> Any:
        value: Any = (low, high)
        if field == "shear":  # degrees in albumentations, tan(angle) in evoaug
            value = (math.degrees(math.atan(low)), math.degrees(math.atan(high)))
        if field == "scale":
            value = (1.0 + low, 1.0 + high)
        if axis is not None:  # name both axes: a missing one defaults to 1 degree of shear
            value = {axis: value, ("y" if axis == "x" else "x"): (0.0, 0.0)}
        extra = {"keep_ratio": True} if field == "scale" else {}
        return A.Affine(**{field: value}, **extra, interpolation=interpolation, fill=0, p=p)

    return build


def _color_jitter(field: str) -> _Builder:
    def build(A: Any, low: float, high: float, p: float) -> Any:
        ranges = {"brightness": (1.0, 1.0), "contrast": (1.0, 1.0), "saturation": (1.0, 1.0)}
        ranges["hue"] = (0.0, 0.0)
        offset = 0.0 if field == "hue" else 1.0  # enhance factors are 1 + m; hue is in turns
        ranges[field] = (offset + low, offset + high)
        return A.ColorJitter(**ranges, p=p)

    return build


def _posterize(A: Any, low: float, high: float, p: float) -> Any:
    # round() halves to even, as torch.round in evoaug's kernel.
    return A.Posterize(num_bits=(round(low), round(high)), p=p)


def _solarize(A: Any, low: float, high: float, p: float) -> Any:
    return A.Solarize(threshold_range=(low, high), p=p)


def _gaussian_blur(A: Any, low: float, high: float, p: float) -> Any:
    sigma = (max(low, _MIN_SIGMA), max(high, _MIN_SIGMA))
    return A.GaussianBlur(sigma_limit=sigma, blur_limit=0, p=p)


def _gaussian_noise(A: Any, low: float, high: float, p: float) -> Any:
    return A.GaussNoise(std_range=(low, high), mean_range=(0.0, 0.0), per_channel=True, p=p)


def _cutout(A: Any, low: float, high: float, p: float) -> Any:
    return A.CoarseDropout(
        num_holes_range=(1, 1),
        hole_height_range=(low, high),
        hole_width_range=(low, high),
        fill=_CUTOUT_FILL,
        p=p,
    )


# The one mapping table: evoaug op name -> builder of its albumentations transform.
_BUILDERS: dict[str, _Builder] = {
    "Identity": _fixed("NoOp"),
    "ShearX": _affine("x", "shear"),
    "ShearY": _affine("y", "shear"),
    "TranslateX": _affine("x", "translate_percent"),
    "TranslateY": _affine("y", "translate_percent"),
    "Rotate": _affine(None, "rotate"),
    "HorizontalFlip": _fixed("HorizontalFlip"),
    "VerticalFlip": _fixed("VerticalFlip"),
    "Zoom": _affine(None, "scale"),
    "Brightness": _color_jitter("brightness"),
    "Contrast": _color_jitter("contrast"),
    "Color": _color_jitter("saturation"),
    "Hue": _color_jitter("hue"),
    "Posterize": _posterize,
    "Solarize": _solarize,
    "AutoContrast": _fixed("AutoContrast", cutoff=0, method="pil"),
    "Equalize": _fixed("Equalize", mode="cv", by_channels=True),
    "Invert": _fixed("InvertImg"),
    "GaussianBlur": _gaussian_blur,
    "GaussianNoise": _gaussian_noise,
    "Grayscale": _fixed("ToGray", num_output_channels=3, method="weighted_average"),
    "Cutout": _cutout,
}

_WHY_NOT = {
    "Sharpness": "albumentations' Sharpen cannot blur, which Sharpness does at negative magnitudes",
    "Perspective": "albumentations' Perspective zooms into a random quadrilateral instead of "
    "pulling the image corners inwards",
}

ALBUMENTATIONS_OPS: tuple[str, ...] = tuple(sorted(_BUILDERS))
"""The ops :func:`policy_to_albumentations` can export."""


def _gene_transform(A: Any, gene: Gene, uniform: bool, interpolation: int) -> Any:
    spec = get_op(gene.op)
    build = _BUILDERS[gene.op]
    if spec.affine is not None:  # the warps take the policy's interpolation
        build = functools.partial(build, interpolation=interpolation)
    p = gene.probability
    if not spec.has_magnitude:
        return build(A, spec.low, spec.low, p)
    # Magnitudes are float32: keep 7 significant digits, so 0.505 is not 0.5049999952316284.
    magnitude = float(f"{gene.magnitude:.7g}")
    if magnitude == spec.low:  # level 0 is every built-in op's identity
        return A.NoOp(p=p)
    if uniform:
        # evoaug draws the level uniformly in [0, level]; a signed op (all have low == 0) then
        # takes a random sign, i.e. a magnitude uniform in [-m, m].
        if spec.signed:
            return build(A, -magnitude, magnitude, p)
        return build(A, min(spec.low, magnitude), max(spec.low, magnitude), p)
    if spec.signed:  # exactly +m or -m, each with probability 1/2
        return A.OneOf(
            [build(A, magnitude, magnitude, 1.0), build(A, -magnitude, -magnitude, 1.0)], p=p
        )
    return build(A, magnitude, magnitude, p)


def policy_to_albumentations(policy: PolicyLike) -> A.Compose:
    """Build the ``albumentations.Compose`` that applies ``policy`` to one image.

    The structure mirrors the policy: ``Compose([OneOf([Sequential(genes, p=1) per sub-policy],
    p=1)])``, so each image draws one sub-policy uniformly and each gene fires with its
    probability; a signed op is a ``OneOf`` of its ``+m`` and ``-m`` transforms. With
    ``magnitude_sampling="uniform"`` each transform samples from the range between the op's
    identity and the gene's magnitude (``-m`` to ``m`` for signed ops): the nearest albumentations
    equivalent of evoaug's uniform level, exact except that Posterize draws whole bits uniformly,
    ShearX/Y draw the angle rather than its tangent uniformly, and Cutout draws the hole's height
    and width independently. The module docstring lists each op's transform and what differs.
    The warps interpolate as the policy does (OpenCV's ``INTER_LINEAR`` or ``INTER_NEAREST``).
    Use it on ``uint8`` ``H x W x C`` images (Cutout's gray fill is 8-bit).

    ``albumentations.Compose(seed=...)`` gives every transform its own copy of one seed, which
    makes the genes' coin flips identical; to seed the returned pipeline, share one stream:
    ``compose.set_random_state(np.random.default_rng(seed), random.Random(seed))``.

    Args:
        policy: The policy to export.

    Returns:
        The albumentations pipeline; call it as ``compose(image=image)["image"]``.

    Raises:
        ConfigError: The policy uses an op albumentations has no faithful equivalent for (the
            message lists them and the supported ops), or albumentations is not installed.

    Example:
        >>> import numpy as np
        >>> from evoaug import Policy
        >>> policy = Policy.from_genes([[("Invert", 1.0, 0.0)], [("Rotate", 0.5, 0.2)]])
        >>> compose = policy.to_albumentations()
        >>> image = np.zeros((32, 32, 3), dtype=np.uint8)
        >>> compose(image=image)["image"].shape
        (32, 32, 3)

    """
    ops = dict.fromkeys(gene.op for sub in policy.sub_policies for gene in sub)
    missing = [op for op in ops if op not in _BUILDERS]
    if missing:
        reasons = "; ".join(
            f"{op!r} ({_WHY_NOT.get(op, 'a custom op albumentations does not know')})"
            for op in missing
        )
        raise ConfigError(
            f"albumentations has no faithful equivalent for op(s) {reasons}. Supported ops: "
            f"{', '.join(ALBUMENTATIONS_OPS)}. Replace those ops, or apply the policy with "
            "evoaug itself: `policy(images)` or `policy.to_torchvision()`"
        )
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # else the import phones home
    try:
        import albumentations as A
    except ImportError as err:
        raise ConfigError(
            "`Policy.to_albumentations()` needs albumentations: pip install albumentations"
        ) from err

    uniform = policy.magnitude_sampling == "uniform"
    interpolation = _CV2_INTERPOLATION[policy.interpolation]
    sub_policies = [
        A.Sequential([_gene_transform(A, gene, uniform, interpolation) for gene in sub], p=1.0)
        for sub in policy.sub_policies
    ]
    return A.Compose([A.OneOf(sub_policies, p=1.0)])
