"""Policy: what an augmentation policy is, how it is stored, exported, and applied.

A policy is K sub-policies of genes; a gene is ``(op name, probability, level in [0, 1])``.
For every image of a batch one sub-policy is drawn uniformly; each of its genes fires with its
probability; the level maps to the op's magnitude through the op's own range
(:meth:`evoaug.ops.OpSpec.magnitude`), with a random sign per image for signed ops.

:class:`Policy` holds the data; the work is done below it and never imports it: the genes and
their checks (:mod:`._genes`), files (:mod:`._io`), presets (:mod:`._presets`), exports
(:mod:`._torchvision`, :mod:`._albumentations`) and the engine that augments batches
(:mod:`evoaug.augment`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from evoaug.augment import CompiledPolicy, apply, compile_policy
from evoaug.exceptions import ConfigError
from evoaug.ops import registry_version
from evoaug.policy._albumentations import policy_to_albumentations
from evoaug.policy._genes import (
    INTERPOLATIONS,
    MAGNITUDE_SAMPLINGS,
    MAX_SUB_POLICIES,
    Gene,
    Interpolation,
    MagnitudeSampling,
    SubPolicy,
)
from evoaug.policy._io import (
    fields_from_dict,
    fields_from_json,
    fields_from_yaml,
    policy_to_dict,
    policy_to_json,
    policy_to_yaml,
)
from evoaug.policy._presets import preset_fields
from evoaug.policy._torchvision import PolicyTransform

if TYPE_CHECKING:
    import albumentations as A

__all__ = ["Policy", "preset"]


@dataclass(frozen=True)
class Policy:
    """An augmentation policy: sub-policies drawn per image.

    Calling a policy augments a batch ``[B, C, H, W]`` (or one image ``[C, H, W]``): every image
    draws its own sub-policy, coin flips, signs and, with ``magnitude_sampling="uniform"``, its own
    level uniformly in ``[0, level]`` (as TrivialAugment does). Float images in ``[0, 1]`` and
    ``uint8`` images are accepted; the output has the input's dtype.

    Args:
        sub_policies: The sub-policies, at least one.
        magnitude_sampling: ``"fixed"`` uses each gene's level; ``"uniform"`` draws each image's
            level uniformly in ``[0, level]``.
        name: Optional label kept in files and reports.
        interpolation: How the warps resample: ``"bilinear"`` (default) or ``"nearest"``
            (torchvision's default in ``AutoAugment``, ``RandAugment`` and
            ``TrivialAugmentWide``). Nearest warps of ``uint8`` images copy bytes, without
            converting to float: on the CPU they cost about half as much.

    Raises:
        ConfigError: No sub-policies, a wrong type, or an unknown ``magnitude_sampling`` or
            ``interpolation``.

    Example:
        >>> import torch
        >>> policy = Policy.preset("trivialaugment")
        >>> images = torch.rand(8, 3, 32, 32)
        >>> out = policy(images, generator=torch.Generator().manual_seed(0))
        >>> out.shape, out.dtype
        (torch.Size([8, 3, 32, 32]), torch.float32)
        >>> bool(torch.equal(out, policy(images, generator=torch.Generator().manual_seed(0))))
        True

    """

    sub_policies: tuple[SubPolicy, ...]
    magnitude_sampling: MagnitudeSampling = "fixed"
    name: str | None = None
    interpolation: Interpolation = "bilinear"

    def __post_init__(self) -> None:
        subs = tuple(self.sub_policies)
        if not subs:
            raise ConfigError("`sub_policies` must hold at least one sub-policy, got none")
        if len(subs) > MAX_SUB_POLICIES:
            raise ConfigError(
                f"`sub_policies` must hold at most {MAX_SUB_POLICIES} sub-policies, got {len(subs)}"
            )
        for i, sub in enumerate(subs):
            if not isinstance(sub, SubPolicy):
                raise ConfigError(
                    f"`sub_policies[{i}]` must be a SubPolicy, got {type(sub).__name__}"
                )
        object.__setattr__(self, "sub_policies", subs)
        if self.magnitude_sampling not in MAGNITUDE_SAMPLINGS:
            raise ConfigError(
                f"`magnitude_sampling` must be one of {MAGNITUDE_SAMPLINGS}, "
                f"got {self.magnitude_sampling!r}"
            )
        if self.name is not None and not isinstance(self.name, str):
            raise ConfigError(f"`name` must be a string or None, got {self.name!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"`interpolation` must be one of {INTERPOLATIONS}, got {self.interpolation!r}"
            )

    # ---------------------------------------------------------------- construction helpers

    @classmethod
    def from_genes(
        cls,
        sub_policies: Sequence[Sequence[tuple[str, float, float]]],
        *,
        magnitude_sampling: MagnitudeSampling = "fixed",
        name: str | None = None,
        interpolation: Interpolation = "bilinear",
    ) -> Policy:
        """Build a policy from nested ``(op, probability, level)`` tuples.

        Example:
            >>> p = Policy.from_genes([[("Invert", 0.5, 0.0)], [("Rotate", 1.0, 0.3)]])
            >>> len(p), p.ops
            (2, ('Invert', 'Rotate'))

        """
        return cls(
            tuple(SubPolicy(tuple(Gene(*g) for g in sub)) for sub in sub_policies),
            magnitude_sampling=magnitude_sampling,
            name=name,
            interpolation=interpolation,
        )

    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> Policy:
        """A published policy by name; see :func:`evoaug.policy.presets` for the list.

        Keywords go to :func:`evoaug.policy.preset` (``interpolation`` for every preset).

        Example:
            >>> len(Policy.preset("autoaugment-cifar10"))
            25
            >>> Policy.preset("trivialaugment", interpolation="nearest").interpolation
            'nearest'

        """
        return preset(name, **kwargs)

    # ---------------------------------------------------------------- structure

    def __len__(self) -> int:
        return len(self.sub_policies)

    def __iter__(self) -> Iterator[SubPolicy]:
        return iter(self.sub_policies)

    @property
    def ops(self) -> tuple[str, ...]:
        """Distinct op names in order of first use."""
        return tuple(dict.fromkeys(g.op for sub in self.sub_policies for g in sub))

    @property
    def max_genes(self) -> int:
        """Length of the longest sub-policy."""
        return max(len(sub) for sub in self.sub_policies)

    # ---------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        """Builtins only: format version, magnitude sampling, sub-policies by op name."""
        return policy_to_dict(self)

    @classmethod
    def from_dict(cls, data: object) -> Policy:
        """Validate and load a dict produced by :meth:`to_dict` (or a file's contents).

        Raises:
            ConfigError: A field is missing, of the wrong type or out of range; the message
                names the field, the allowed values and what was given.

        """
        return cls(**fields_from_dict(data))

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Serialize to YAML; also write it to ``path`` (atomically) when given."""
        return policy_to_yaml(self, path)

    @classmethod
    def from_yaml(cls, source: str | Path) -> Policy:
        """Load a policy from a YAML file path or YAML text (``yaml.safe_load`` only)."""
        return cls(**fields_from_yaml(source))

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialize to JSON; also write it to ``path`` (atomically) when given."""
        return policy_to_json(self, path)

    @classmethod
    def from_json(cls, source: str | Path) -> Policy:
        """Load a policy from a JSON file path or JSON text."""
        return cls(**fields_from_json(source))

    # ---------------------------------------------------------------- exports

    def to_torchvision(self, *, seed: int | None = None) -> PolicyTransform:
        """An ``nn.Module`` that applies this policy inside a torchvision pipeline."""
        return PolicyTransform(self, seed=seed)

    def to_albumentations(self) -> A.Compose:
        """An ``albumentations.Compose`` equivalent, for the ops albumentations has."""
        return policy_to_albumentations(self)

    # ---------------------------------------------------------------- application

    def __call__(
        self, images: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment ``images`` ``[B, C, H, W]`` or ``[C, H, W]``, each image independently.

        The ops compute in float: ``uint8`` images are converted to float ``/ 255`` only where
        an op touches them, and rounded to 8 bits after each gene, as torchvision does on
        ``uint8`` tensors; ops with a ``uint8`` kernel (which gives the same bytes) skip the
        conversion; images no op touches come back byte-identical. This runs
        :func:`evoaug.augment.apply` with the policy compiled once per device (and again when
        the op registry changes).

        Args:
            images: Float images in ``[0, 1]`` or ``uint8`` images, 1 or 3 channels, any device.
            generator: Source of all randomness; ``None`` uses a fresh OS-seeded generator.

        Returns:
            The augmented images, same shape, dtype and device as ``images``.

        Raises:
            InputError: Not a tensor, wrong rank or channel count, or float values outside
                ``[0, 1]``.

        """
        device = images.device if isinstance(images, torch.Tensor) else torch.device("cpu")
        return apply(_compiled(self, device), images, generator)

    def __str__(self) -> str:
        rows = [
            " -> ".join(f"{g.op}(p={g.probability:.2f}, level={g.level:.2f})" for g in sub)
            for sub in self.sub_policies
        ]
        head = f"Policy{f' {self.name!r}' if self.name else ''}: {len(self)} sub-policies"
        if self.magnitude_sampling != "fixed":
            head += f", magnitude_sampling={self.magnitude_sampling!r}"
        if self.interpolation != "bilinear":
            head += f", interpolation={self.interpolation!r}"
        return "\n".join([head, *(f"  {i}: {r}" for i, r in enumerate(rows))])


def preset(name: str, *, interpolation: Interpolation = "bilinear", **kwargs: Any) -> Policy:
    """Build a published policy.

    Args:
        name: One of :func:`presets`.
        interpolation: ``"bilinear"`` (default) or ``"nearest"``, as torchvision's
            auto-augment transforms do by default; see :class:`~evoaug.Policy`.
        **kwargs: ``randaugment``: ``num_ops`` (N, default 2), ``magnitude`` (M, default 9),
            ``num_magnitude_bins`` (default 31). ``trivialaugment``: ``image_size`` (default 32),
            which turns the published 32-pixel translation into a fraction of the side.
            Translations reach at most the whole side: below 32 pixels the largest shift is
            the side (torchvision's, 32 pixels, can move an image out of the frame).

    Raises:
        ConfigError: Unknown name or keyword.

    Example:
        >>> preset("randaugment", num_ops=1, magnitude=9).name
        'randaugment(num_ops=1, magnitude=9)'

    """
    return Policy(**preset_fields(name, interpolation=interpolation, **kwargs))


# Each policy's compiled genes, per device, for the op registry's version they were compiled
# with. Keyed by identity rather than by value: hashing a large policy (RandAugment with N=3 has
# 2744 sub-policies) costs about a millisecond per call, a tenth of augmenting a CIFAR batch.
# A policy's entry goes when the policy is garbage collected.
_COMPILED: dict[int, tuple[int, dict[torch.device, CompiledPolicy]]] = {}


def _compiled(policy: Policy, device: torch.device) -> CompiledPolicy:
    """``policy`` compiled on ``device``; compiled again when the op registry has changed."""
    version = registry_version()
    key = id(policy)
    entry = _COMPILED.get(key)
    if entry is None or entry[0] != version:
        genes = [[(g.op, g.probability, g.level) for g in sub] for sub in policy.sub_policies]
        on_cpu = compile_policy(
            genes, magnitude_sampling=policy.magnitude_sampling, interpolation=policy.interpolation
        )
        if entry is None:
            weakref.finalize(policy, _COMPILED.pop, key, None)
        entry = _COMPILED[key] = (version, {on_cpu.device: on_cpu})
    by_device = entry[1]
    if device not in by_device:
        by_device[device] = next(iter(by_device.values())).to(device)
    return by_device[device]
