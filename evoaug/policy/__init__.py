"""Policies: genes, sub-policies, presets and policy files."""

from evoaug.policy._genes import (
    INTERPOLATIONS,
    MAGNITUDE_SAMPLINGS,
    Gene,
    Interpolation,
    MagnitudeSampling,
    SubPolicy,
)
from evoaug.policy._io import FORMAT_VERSION
from evoaug.policy._policy import Policy, preset
from evoaug.policy._presets import presets, published_magnitude

__all__ = [
    "FORMAT_VERSION",
    "INTERPOLATIONS",
    "MAGNITUDE_SAMPLINGS",
    "Gene",
    "Interpolation",
    "MagnitudeSampling",
    "Policy",
    "SubPolicy",
    "preset",
    "presets",
    "published_magnitude",
]
