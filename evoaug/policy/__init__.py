"""Policies: genes, sub-policies, presets and policy files."""

from evoaug.policy._genes import (
    INTERPOLATIONS,
    MAGNITUDE_SAMPLINGS,
    Gene,
    Interpolation,
    MagnitudeSampling,
    SubPolicy,
)
from evoaug.policy._io import FORMAT_VERSION, SUPPORTED_VERSIONS
from evoaug.policy._policy import Policy, preset
from evoaug.policy._presets import presets, published_magnitude
from evoaug.policy._source import POLICY_SUFFIXES, resolve_policy

__all__ = [
    "FORMAT_VERSION",
    "INTERPOLATIONS",
    "MAGNITUDE_SAMPLINGS",
    "POLICY_SUFFIXES",
    "SUPPORTED_VERSIONS",
    "Gene",
    "Interpolation",
    "MagnitudeSampling",
    "Policy",
    "SubPolicy",
    "preset",
    "presets",
    "published_magnitude",
    "resolve_policy",
]
