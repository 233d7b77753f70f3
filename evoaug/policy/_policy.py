"""Policy, SubPolicy and Gene: what an augmentation policy is, and how a batch is augmented.

A policy is K sub-policies of genes; a gene is ``(op name, probability, level in [0, 1])``.
For every image of a batch one sub-policy is drawn uniformly; each of its genes fires with its
probability; the level maps to the op's magnitude through the op's own range
(:meth:`evoaug.ops.OpSpec.magnitude`), with a random sign per image for signed ops.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from evoaug.exceptions import ConfigError, InputError
from evoaug.ops import get_op
from evoaug.ops._random import fresh_generator, randint, uniform

if TYPE_CHECKING:
    import albumentations as A

    from evoaug.policy._torchvision import PolicyTransform

__all__ = ["MAGNITUDE_SAMPLINGS", "Gene", "MagnitudeSampling", "Policy", "SubPolicy"]

MagnitudeSampling = Literal["fixed", "uniform"]
MAGNITUDE_SAMPLINGS: tuple[str, ...] = ("fixed", "uniform")


def _unit_interval(field_name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"`{field_name}` must be a number in [0, 1], got {value!r} ({type(value).__name__})"
        )
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"`{field_name}` must be a number in [0, 1], got {value!r}")
    return float(value)


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


@dataclass(frozen=True)
class _Tables:
    """A policy compiled to per-(sub-policy, position) tensors for batched application."""

    op_names: tuple[str, ...]
    op_index: torch.Tensor  # [K, L] int64, -1 where a sub-policy is shorter than L
    probability: torch.Tensor  # [K, L]
    level: torch.Tensor  # [K, L]
    ops_at: tuple[tuple[int, ...], ...]  # distinct op indices used at each position


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

    Raises:
        ConfigError: No sub-policies, a wrong type, or an unknown ``magnitude_sampling``.

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
    _tables: list[_Tables] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        subs = tuple(self.sub_policies)
        if not subs:
            raise ConfigError("`sub_policies` must hold at least one sub-policy, got none")
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

    # ---------------------------------------------------------------- construction helpers

    @classmethod
    def from_genes(
        cls,
        sub_policies: Sequence[Sequence[tuple[str, float, float]]],
        *,
        magnitude_sampling: MagnitudeSampling = "fixed",
        name: str | None = None,
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
        )

    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> Policy:
        """A published policy by name; see :func:`evoaug.policy.presets` for the list.

        Example:
            >>> len(Policy.preset("autoaugment-cifar10"))
            25

        """
        from evoaug.policy._presets import preset

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
        from evoaug.policy._io import policy_to_dict

        return policy_to_dict(self)

    @classmethod
    def from_dict(cls, data: object) -> Policy:
        """Validate and load a dict produced by :meth:`to_dict` (or a file's contents).

        Raises:
            ConfigError: A field is missing, of the wrong type or out of range; the message
                names the field, the allowed values and what was given.

        """
        from evoaug.policy._io import policy_from_dict

        return policy_from_dict(data)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Serialize to YAML; also write it to ``path`` (atomically) when given."""
        from evoaug.policy._io import policy_to_yaml

        return policy_to_yaml(self, path)

    @classmethod
    def from_yaml(cls, source: str | Path) -> Policy:
        """Load a policy from a YAML file path or YAML text (``yaml.safe_load`` only)."""
        from evoaug.policy._io import policy_from_yaml

        return policy_from_yaml(source)

    def to_json(self, path: str | Path | None = None) -> str:
        """Serialize to JSON; also write it to ``path`` (atomically) when given."""
        from evoaug.policy._io import policy_to_json

        return policy_to_json(self, path)

    @classmethod
    def from_json(cls, source: str | Path) -> Policy:
        """Load a policy from a JSON file path or JSON text."""
        from evoaug.policy._io import policy_from_json

        return policy_from_json(source)

    # ---------------------------------------------------------------- exports

    def to_torchvision(self, *, seed: int | None = None) -> PolicyTransform:
        """An ``nn.Module`` that applies this policy inside a torchvision pipeline."""
        from evoaug.policy._torchvision import PolicyTransform

        return PolicyTransform(self, seed=seed)

    def to_albumentations(self) -> A.Compose:
        """An ``albumentations.Compose`` equivalent, for the ops albumentations has."""
        from evoaug.policy._albumentations import policy_to_albumentations

        return policy_to_albumentations(self)

    # ---------------------------------------------------------------- application

    def _compiled(self) -> _Tables:
        if self._tables:
            return self._tables[0]
        names = self.ops
        index = {n: i for i, n in enumerate(names)}
        k, length = len(self.sub_policies), self.max_genes
        op_index = torch.full((k, length), -1, dtype=torch.int64)
        prob = torch.zeros(k, length)
        level = torch.zeros(k, length)
        for i, sub in enumerate(self.sub_policies):
            for j, gene in enumerate(sub):
                op_index[i, j] = index[gene.op]
                prob[i, j] = gene.probability
                level[i, j] = gene.level
        ops_at = tuple(
            tuple(sorted({int(v) for v in op_index[:, j].tolist() if v >= 0}))
            for j in range(length)
        )
        tables = _Tables(names, op_index, prob, level, ops_at)
        self._tables.append(tables)
        return tables

    def __call__(
        self, images: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment ``images`` ``[B, C, H, W]`` or ``[C, H, W]``, each image independently.

        Args:
            images: Float images in ``[0, 1]`` or ``uint8`` images, 1 or 3 channels, any device.
            generator: Source of all randomness; ``None`` uses a fresh OS-seeded generator.

        Returns:
            The augmented images, same shape, dtype and device as ``images``.

        Raises:
            InputError: Not a tensor, wrong rank or channel count, or float values outside
                ``[0, 1]``.

        """
        x, restore = _prepare(images)
        if x.shape[0] == 0:
            return images
        if generator is None:
            generator = fresh_generator("cpu")
        out = self._apply(x, generator)
        return restore(out)

    def _apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        t = self._compiled()
        b, device = x.shape[0], x.device
        k, length = t.op_index.shape
        # All draws up front, in a fixed order, so the stream does not depend on what fires.
        choice = randint(k, (b,), generator, device)
        draws = uniform((length, 3, b), generator, device)
        op_index = t.op_index.to(device)[choice]
        prob = t.probability.to(device)[choice]
        level = t.level.to(device)[choice]
        out = x  # a private copy made by _prepare
        for j in range(length):
            fires = draws[j, 0] < prob[:, j]
            levels = level[:, j]
            if self.magnitude_sampling == "uniform":
                levels = levels * draws[j, 1]
            signs = torch.where(draws[j, 2] < 0.5, -1.0, 1.0)
            for op_id in t.ops_at[j]:
                spec = get_op(t.op_names[op_id])
                if spec.name == "Identity":
                    continue
                selected = torch.nonzero(fires & (op_index[:, j] == op_id)).squeeze(1)
                n = selected.numel()
                if n == 0:
                    continue
                mags = spec.magnitude(levels[selected])
                if spec.signed:
                    mags = mags * signs[selected]
                if n == b:
                    out = spec(out, mags, generator=generator)
                else:
                    result = spec(out.index_select(0, selected), mags, generator=generator)
                    out.index_copy_(0, selected, result)
        return out

    def __str__(self) -> str:
        rows = [
            " -> ".join(f"{g.op}(p={g.probability:.2f}, level={g.level:.2f})" for g in sub)
            for sub in self.sub_policies
        ]
        head = f"Policy{f' {self.name!r}' if self.name else ''}: {len(self)} sub-policies"
        if self.magnitude_sampling != "fixed":
            head += f", magnitude_sampling={self.magnitude_sampling!r}"
        return "\n".join([head, *(f"  {i}: {r}" for i, r in enumerate(rows))])


def _prepare(images: object) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Validate and convert images to float ``[B, C, H, W]``; return a function that undoes it."""
    if not isinstance(images, torch.Tensor):
        raise InputError(
            "`images` must be a torch.Tensor [B, C, H, W] or [C, H, W], "
            f"got {type(images).__name__}"
        )
    if images.ndim not in (3, 4):
        raise InputError(
            f"`images` must have shape [B, C, H, W] or [C, H, W], got {tuple(images.shape)}"
        )
    squeeze = images.ndim == 3
    x = images.unsqueeze(0) if squeeze else images
    if x.shape[1] not in (1, 3):
        raise InputError(
            f"`images` must have 1 or 3 channels (dimension -3), got shape {tuple(images.shape)}; "
            "channels-last arrays need `.permute(0, 3, 1, 2)`"
        )
    dtype = images.dtype
    private = False  # whether x is already a copy that _apply may modify in place
    if dtype == torch.uint8:
        x = x.to(torch.float32).div_(255.0)
        private = True
    elif dtype.is_floating_point:
        if x.numel():
            lo, hi = torch.aminmax(x)
            if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
                raise InputError(
                    f"float `images` must be in [0, 1], got values in [{float(lo)!r}, "
                    f"{float(hi)!r}]; augment before normalizing, or divide uint8 data by 255"
                )
        if dtype not in (torch.float32, torch.float64):
            x = x.float()
            private = True
    else:
        raise InputError(f"`images` must be float in [0, 1] or uint8, got dtype {dtype}")

    def restore(out: torch.Tensor) -> torch.Tensor:
        if dtype == torch.uint8:
            out = out.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)
        elif out.dtype != dtype:
            out = out.to(dtype)
        return out.squeeze(0) if squeeze else out

    return (x if private else x.clone()), restore
