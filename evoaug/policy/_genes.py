"""What a policy is made of: :class:`Gene` and :class:`SubPolicy`, their limits, and two views.

This module knows nothing of :class:`~evoaug.Policy` itself; the modules that read or build
policies (files, presets, exports) use the views defined here, so that the policy module can
use them without their importing it back:

* :class:`PolicyFields`: the arguments that build a policy (what a file or a preset yields);
* :class:`PolicyLike`: what an existing policy offers to read (what a file or an export needs).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, TypedDict, runtime_checkable

import numpy as np
import torch

from evoaug.augment import MAGNITUDE_SAMPLINGS, MagnitudeSampling
from evoaug.exceptions import ConfigError
from evoaug.ops import INTERPOLATIONS, Interpolation, get_op

__all__ = [
    "INTERPOLATIONS",
    "MAGNITUDE_SAMPLINGS",
    "MAX_GENES",
    "MAX_SUB_POLICIES",
    "Gene",
    "Interpolation",
    "MagnitudeSampling",
    "PolicyFields",
    "PolicyLike",
    "SubPolicy",
]

MAX_SUB_POLICIES = 4096  # RandAugment(N=3) needs 14**3 = 2744
MAX_GENES = 16


def _unit_interval(field_name: str, value: object) -> float:
    # Any real number, NumPy's float32 and int64 included (a genome's values often are); not
    # bool, and not a tensor (call `.item()`).
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(
            f"`{field_name}` must be a number in [0, 1], got {value!r} ({type(value).__name__})"
        )
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ConfigError(f"`{field_name}` must be a number in [0, 1], got {value!r}")
    return number


@dataclass(frozen=True)
class Gene:
    """One op of a sub-policy: which op, how often, how strong.

    Args:
        op: Name of a registered op (see :func:`evoaug.available_ops`).
        probability: Chance that the op fires for an image, in ``[0, 1]``.
        level: Normalized strength in ``[0, 1]``; the op's range maps it to a magnitude.

    Raises:
        UnknownOpError: ``op`` is not registered.
        ConfigError: ``probability`` or ``level`` is not a number in ``[0, 1]``.

    Example:
        >>> Gene("Rotate", 0.5, 0.2).magnitude
        27.0

    """

    op: str
    probability: float = 1.0
    level: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.op, str):
            raise ConfigError(f"`op` must be an op name (str), got {self.op!r}")
        get_op(self.op)
        object.__setattr__(self, "probability", _unit_interval("probability", self.probability))
        object.__setattr__(self, "level", _unit_interval("level", self.level))

    @property
    def magnitude(self) -> float:
        """The op's magnitude at this gene's level (before any random sign)."""
        return get_op(self.op).magnitude(self.level)


@dataclass(frozen=True)
class SubPolicy:
    """A sequence of genes applied one after another to the same image.

    Example:
        >>> SubPolicy((Gene("Invert", 0.2), Gene("Contrast", 0.6, 0.5))).ops
        ('Invert', 'Contrast')

    """

    genes: tuple[Gene, ...]

    def __post_init__(self) -> None:
        genes = tuple(self.genes)
        if not genes:
            raise ConfigError("a sub-policy needs at least one gene, got none")
        if len(genes) > MAX_GENES:  # the files' limit: what is built here can be read back
            raise ConfigError(f"a sub-policy holds at most {MAX_GENES} genes, got {len(genes)}")
        for i, gene in enumerate(genes):
            if not isinstance(gene, Gene):
                raise ConfigError(f"`genes[{i}]` must be a Gene, got {type(gene).__name__}")
        object.__setattr__(self, "genes", genes)

    @property
    def ops(self) -> tuple[str, ...]:
        """The op names, in application order."""
        return tuple(g.op for g in self.genes)

    def __iter__(self) -> Iterator[Gene]:
        return iter(self.genes)

    def __len__(self) -> int:
        return len(self.genes)


class PolicyFields(TypedDict):
    """The arguments of :class:`~evoaug.Policy`, as a file or a preset yields them."""

    sub_policies: tuple[SubPolicy, ...]
    magnitude_sampling: MagnitudeSampling
    name: str | None
    interpolation: Interpolation


@runtime_checkable
class PolicyLike(Protocol):
    """What :class:`~evoaug.Policy` offers to the modules that read one (files, exports)."""

    @property
    def sub_policies(self) -> tuple[SubPolicy, ...]: ...

    @property
    def magnitude_sampling(self) -> MagnitudeSampling: ...

    @property
    def name(self) -> str | None: ...

    @property
    def interpolation(self) -> Interpolation: ...

    def __call__(
        self, images: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...
