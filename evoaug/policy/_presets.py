"""Published policies as presets: AutoAugment, RandAugment, TrivialAugmentWide, identity.

The tables are those of the papers, as torchvision v2 ships them: AutoAugment (Cubuk et al., CVPR
2019) for CIFAR-10, SVHN and ImageNet; RandAugment (Cubuk et al., 2020); TrivialAugment
(Müller & Hutter, ICCV 2021) in its "wide" space. Each published magnitude is placed in evoaug's
level space with :meth:`evoaug.ops.OpSpec.level_of`, so a preset applies the published magnitude.

Differences from torchvision, by design: TrivialAugment draws a continuous level in ``[0, 1]``
instead of one of 31 bins; warps interpolate bilinearly unless ``interpolation="nearest"``
(torchvision's default).

The builders yield the arguments of a policy (:class:`~evoaug.policy._genes.PolicyFields`);
:func:`evoaug.policy.preset` builds the policy.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import Any

from evoaug.exceptions import ConfigError
from evoaug.ops import get_op
from evoaug.policy._genes import Gene, Interpolation, MagnitudeSampling, PolicyFields, SubPolicy

__all__ = ["PRESETS", "preset_fields", "presets", "published_magnitude"]

# (op, probability, magnitude index of 10 bins or None), as published.
_AA_IMAGENET = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
    (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
    (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
    (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
    (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
    (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
    (("Invert", 0.6, None), ("Equalize", 1.0, None)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
    (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
    (("Color", 0.4, 0), ("Equalize", 0.6, None)),
    (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
    (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
    (("Invert", 0.6, None), ("Equalize", 1.0, None)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
)
_AA_CIFAR10 = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)
_AA_SVHN = (
    (("ShearX", 0.9, 4), ("Invert", 0.2, None)),
    (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
    (("Equalize", 0.6, None), ("Solarize", 0.6, 6)),
    (("Invert", 0.9, None), ("Equalize", 0.6, None)),
    (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
    (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
    (("ShearY", 0.9, 8), ("Invert", 0.4, None)),
    (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
    (("Invert", 0.9, None), ("AutoContrast", 0.8, None)),
    (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
    (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
    (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
    (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)),
    (("Invert", 0.9, None), ("Equalize", 0.6, None)),
    (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
    (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
    (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
    (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
    (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
    (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
    (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
    (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
    (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
    (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
    (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
)

# The ops RandAugment and TrivialAugmentWide choose from, in torchvision's order.
_RA_OPS = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color",
    "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
)  # fmt: skip

_ENHANCE = ("Brightness", "Color", "Contrast", "Sharpness")


def published_magnitude(op: str, index: int, num_bins: int, *, wide: bool = False) -> float | None:
    """The magnitude of bin ``index`` of ``num_bins`` in the published search space.

    ``wide=False`` is AutoAugment's and RandAugment's space, ``wide=True`` TrivialAugmentWide's.
    Translations are returned as fractions of the image side (TrivialAugmentWide's 32 pixels are
    returned as 32 / 32 = 1.0; see :func:`preset` for other sizes). Returns ``None`` for ops
    without a magnitude.

    Example:
        >>> published_magnitude("Rotate", 9, 10)
        30.0
        >>> published_magnitude("Posterize", 30, 31, wide=True)
        2.0

    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ConfigError(f"`num_bins` must be an int >= 1, got {num_bins!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < num_bins:
        raise ConfigError(f"`index` must be an int in [0, {num_bins - 1}], got {index!r}")
    frac = index / (num_bins - 1) if num_bins > 1 else 0.0
    if op in ("ShearX", "ShearY"):
        return (0.99 if wide else 0.3) * frac
    if op in ("TranslateX", "TranslateY"):
        return (1.0 if wide else 150.0 / 331.0) * frac
    if op == "Rotate":
        return (135.0 if wide else 30.0) * frac
    if op in _ENHANCE:
        return (0.99 if wide else 0.9) * frac
    if op == "Posterize":
        # torchvision: (8 - arange(bins) / ((bins - 1) / 4)).round(); 6 instead of 4 when wide.
        # One bin is level 0, as for every op (torchvision divides 0 by 0 there).
        if num_bins == 1:
            return 8.0
        return float(8 - round(index / ((num_bins - 1) / (6 if wide else 4))))
    if op == "Solarize":
        return 1.0 - frac
    return None


def _level(op: str, magnitude: float | None) -> float:
    return 0.0 if magnitude is None else get_op(op).level_of(magnitude)


def _fields(
    subs: tuple[SubPolicy, ...], name: str, sampling: MagnitudeSampling = "fixed"
) -> PolicyFields:
    return PolicyFields(
        sub_policies=subs, magnitude_sampling=sampling, name=name, interpolation="bilinear"
    )


def _autoaugment(
    table: tuple[tuple[tuple[str, float, int | None], ...], ...], name: str
) -> PolicyFields:
    subs = []
    for sub in table:
        genes = []
        for op, prob, index in sub:
            mag = None if index is None else published_magnitude(op, index, 10)
            genes.append(Gene(op, prob, _level(op, mag)))
        subs.append(SubPolicy(tuple(genes)))
    return _fields(tuple(subs), name)


def _identity() -> PolicyFields:
    return _fields((SubPolicy((Gene("Identity", 1.0, 0.0),)),), "identity")


def _randaugment(
    num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31
) -> PolicyFields:
    for arg, value, low, high in (
        ("num_ops", num_ops, 0, 3),
        ("num_magnitude_bins", num_magnitude_bins, 2, 1000),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"`{arg}` must be an int in [{low}, {high}], got {value!r}")
    if isinstance(magnitude, bool) or not isinstance(magnitude, int):
        raise ConfigError(f"`magnitude` must be an int bin index, got {magnitude!r}")
    if not 0 <= magnitude < num_magnitude_bins:
        raise ConfigError(
            f"`magnitude` must be in [0, {num_magnitude_bins - 1}] for "
            f"num_magnitude_bins={num_magnitude_bins}, got {magnitude!r}"
        )
    name = f"randaugment(num_ops={num_ops}, magnitude={magnitude})"
    if num_ops == 0:
        return _fields(_identity()["sub_policies"], name)
    genes = [
        Gene(op, 1.0, _level(op, published_magnitude(op, magnitude, num_magnitude_bins)))
        for op in _RA_OPS
    ]
    # N independent uniform choices == one uniform choice among the 14**N sequences.
    subs = tuple(SubPolicy(combo) for combo in product(genes, repeat=num_ops))
    return _fields(subs, name)


def _trivialaugment(image_size: int = 32) -> PolicyFields:
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ConfigError(f"`image_size` must be a positive int, got {image_size!r}")
    subs = []
    for op in _RA_OPS:
        mag = published_magnitude(op, 30, 31, wide=True)
        if op in ("TranslateX", "TranslateY"):
            mag = min(1.0, 32.0 / image_size)  # 32 pixels, as a fraction of the side
        subs.append(SubPolicy((Gene(op, 1.0, _level(op, mag)),)))
    return _fields(tuple(subs), "trivialaugment", "uniform")


PRESETS: dict[str, Callable[..., PolicyFields]] = {
    "identity": _identity,
    "randaugment": _randaugment,
    "trivialaugment": _trivialaugment,
    "autoaugment-cifar10": lambda: _autoaugment(_AA_CIFAR10, "autoaugment-cifar10"),
    "autoaugment-svhn": lambda: _autoaugment(_AA_SVHN, "autoaugment-svhn"),
    "autoaugment-imagenet": lambda: _autoaugment(_AA_IMAGENET, "autoaugment-imagenet"),
}


def presets() -> list[str]:
    """Names accepted by :func:`preset` and :meth:`Policy.preset`."""
    return list(PRESETS)


def preset_fields(
    name: str, *, interpolation: Interpolation = "bilinear", **kwargs: Any
) -> PolicyFields:
    """The arguments of a published policy; :func:`evoaug.policy.preset` documents them.

    ``interpolation`` is not checked here: the policy built from the result checks it.

    Raises:
        ConfigError: Unknown name or keyword.

    """
    if name not in PRESETS:
        raise ConfigError(f"`name` must be one of {presets()}, got {name!r}")
    try:
        fields = PRESETS[name](**kwargs)
    except TypeError as err:
        raise ConfigError(f"preset {name!r} does not accept {sorted(kwargs)}: {err}") from err
    fields["interpolation"] = interpolation
    return fields
