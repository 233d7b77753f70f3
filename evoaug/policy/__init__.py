"""Policies: genes, sub-policies, presets and policy files."""

from evoaug.policy._io import FORMAT_VERSION
from evoaug.policy._policy import (
    INTERPOLATIONS,
    MAGNITUDE_SAMPLINGS,
    Gene,
    Interpolation,
    MagnitudeSampling,
    Policy,
    SubPolicy,
)
from evoaug.policy._presets import preset, presets, published_magnitude

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
