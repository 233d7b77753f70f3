"""Policy, SubPolicy and Gene: what an augmentation policy is, and how a batch is augmented.

A policy is K sub-policies of genes; a gene is ``(op name, probability, level in [0, 1])``.
For every image of a batch one sub-policy is drawn uniformly; each of its genes fires with its
probability; the level maps to the op's magnitude through the op's own range
(:meth:`evoaug.ops.OpSpec.magnitude`), with a random sign per image for signed ops.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from evoaug.exceptions import ConfigError, InputError
from evoaug.ops import OpSpec, get_op
from evoaug.ops._geometric import INTERPOLATIONS, Interpolation, warp_affine, warp_nearest
from evoaug.ops._random import fresh_generator, randint, uniform
from evoaug.ops._registry import registry_version

if TYPE_CHECKING:
    import albumentations as A

    from evoaug.policy._torchvision import PolicyTransform

__all__ = [
    "INTERPOLATIONS",
    "MAGNITUDE_SAMPLINGS",
    "Gene",
    "Interpolation",
    "MagnitudeSampling",
    "Policy",
    "SubPolicy",
]

MagnitudeSampling = Literal["fixed", "uniform"]
MAGNITUDE_SAMPLINGS: tuple[str, ...] = ("fixed", "uniform")

MAX_SUB_POLICIES = 4096  # RandAugment(N=3) needs 14**3 = 2744
MAX_GENES = 16

# On CPU, images are converted and augmented in chunks of about this many elements, so that a
# chunk's float copies stay in cache (converting a whole 224x224 batch at once is ~3x slower).
_CHUNK_ELEMENTS = 1 << 20

_ROUNDER = 1.5 * 2.0**23  # float32 x + this, for 0 <= x < 2**22: round(x) in the low bits


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


@dataclass(frozen=True)
class _Tables:
    """A policy compiled to per-(sub-policy, position) tensors for batched application.

    Ops are identified by their rank: the affine ops (those declaring ``affine``) first, then
    the others without a ``uint8`` kernel, then those with one, each in order of first use.
    Sorting a position's images by rank puts every op's images next to each other, the affine
    ones first, and applies the ops that may draw from the generator in their order of first
    use, as an unfused loop over ops would (ops with a ``uint8`` kernel draw nothing, so their
    place does not matter); the ``uint8`` kernels' images come last, outside the float chunks.
    """

    version: int  # the op registry's version when compiled
    specs: tuple[OpSpec, ...]  # the applied ops (all but Identity), by rank
    rank: torch.Tensor  # [K, L] int64, -1 for Identity and where a sub-policy is shorter than L
    values: torch.Tensor  # [2, K, L] float32: probability, level
    ranges: torch.Tensor  # [3, R + 1] float32: low, high - low, signed; last column: no op
    n_affine: int  # ranks below this are affine ops
    _on: dict[torch.device, tuple[torch.Tensor, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``rank``, ``values`` and ``ranges`` on ``device`` (copied once per device)."""
        if device not in self._on:
            self._on[device] = tuple(v.to(device) for v in (self.rank, self.values, self.ranges))
        rank, values, ranges = self._on[device]
        return rank, values, ranges


@dataclass(frozen=True)
class _Work:
    """One op applied to a contiguous range ``[start, end)`` of a position's sorted images.

    ``params`` holds one row per image of the range: magnitudes for an op's kernel, or
    ``[2, 3]`` inverse matrices for the fused affine warp (``spec is None``).
    ``interpolation`` is the policy's, for the fused warp and kernels that take it.
    """

    spec: OpSpec | None
    start: int
    end: int
    params: torch.Tensor
    interpolation: Interpolation = "bilinear"

    @property
    def splittable(self) -> bool:
        """Whether the range may be applied in pieces: the op draws no random numbers."""
        return self.spec is None or not self.spec.takes_generator

    @property
    def native(self) -> bool:
        """Whether it applies to ``uint8`` images directly (:meth:`apply_uint8`).

        True for ops with a ``uint8`` kernel and for the fused warp with ``"nearest"``.
        """
        if self.spec is None:
            return self.interpolation == "nearest"
        return self.spec.uint8 is not None

    def piece(self, start: int, end: int) -> _Work:
        """The sub-range ``[start, end)`` of this work, with its rows of ``params``."""
        if (start, end) == (self.start, self.end):
            return self
        rows = self.params[start - self.start : end - self.start]
        return _Work(self.spec, start, end, rows, self.interpolation)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Apply to ``images``, the float images of this range."""
        if self.spec is None:
            return warp_affine(images, self.params, interpolation=self.interpolation)
        return self.spec(images, self.params, generator=generator, interpolation=self.interpolation)

    def apply_uint8(self, images: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Apply to ``images``, the uint8 images of this range (:attr:`native` work only).

        The result goes to ``out`` when given (``images`` itself is allowed).
        """
        if self.spec is None:  # the warp reads a bordered copy: `out` may be `images`
            return warp_nearest(images, self.params, out=out)
        result = self.spec.apply_uint8(images, self.params)
        return result if out is None else out.copy_(result)


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
    _tables: list[_Tables] = field(default_factory=list, init=False, repr=False, compare=False)

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

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the compiled tables: they hold the ops' kernels and device copies."""
        state = self.__dict__.copy()
        state["_tables"] = []
        return state

    def _compiled(self) -> _Tables:
        # Registering, replacing or removing any op may change these tables: compile again.
        version = registry_version()
        if self._tables and self._tables[0].version == version:
            return self._tables[0]
        registered = tuple(get_op(name) for name in self.ops)
        applied = [spec for spec in registered if spec.name != "Identity"]
        by_rank = tuple(
            [spec for spec in applied if spec.affine is not None]
            + [spec for spec in applied if spec.affine is None and spec.uint8 is None]
            + [spec for spec in applied if spec.uint8 is not None]
        )
        ranks = {spec.name: r for r, spec in enumerate(by_rank)}
        k, length = len(self.sub_policies), self.max_genes
        rank = torch.full((k, length), -1, dtype=torch.int64)
        values = torch.zeros(2, k, length)
        for i, sub in enumerate(self.sub_policies):
            for j, gene in enumerate(sub):
                rank[i, j] = ranks.get(gene.op, -1)
                values[0, i, j] = gene.probability
                values[1, i, j] = gene.level
        ranges = torch.tensor(
            [[s.low, s.high - s.low, float(s.signed)] for s in by_rank] + [[0.0, 0.0, 0.0]]
        ).T.contiguous()
        n_affine = sum(spec.affine is not None for spec in by_rank)
        tables = _Tables(version, by_rank, rank, values, ranges, n_affine)
        self._tables[:] = [tables]
        return tables

    def __call__(
        self, images: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Augment ``images`` ``[B, C, H, W]`` or ``[C, H, W]``, each image independently.

        The ops compute in float: ``uint8`` images are converted to float ``/ 255`` only where
        an op touches them, and rounded to 8 bits after each gene, as torchvision does on
        ``uint8`` tensors; ops with a ``uint8`` kernel (which gives the same bytes) skip the
        conversion; images no op touches come back byte-identical.

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
        """Augment ``x`` and return the result.

        Float ``x`` is a private float32/float64 copy, modified in place; uint8 ``x`` is left
        alone, and the result is new, or ``x`` itself when nothing fires.
        """
        t = self._compiled()
        b, device = x.shape[0], x.device
        k, length = t.rank.shape
        # All draws up front, in a fixed order, so the stream does not depend on what fires.
        choice = randint(k, (b,), generator, device)
        draws = uniform((length, 3, b), generator, device)
        rank, values, ranges = t.on(device)
        rank = rank[choice]  # [B, L]
        prob, level = values[:, choice]  # [B, L] each
        out = x
        for j in range(length):
            fires = draws[j, 0] < prob[:, j]
            levels = level[:, j]
            if self.magnitude_sampling == "uniform":
                levels = levels * draws[j, 1]
            signs = torch.where(draws[j, 2] < 0.5, -1.0, 1.0)
            key = torch.where(fires, rank[:, j], -1)  # -1: not augmented at this position
            mags = _magnitudes(ranges, key, levels, signs)
            out = _apply_position(out, t, key, mags, generator, self.interpolation)
        return out

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


def _magnitudes(
    ranges: torch.Tensor, key: torch.Tensor, levels: torch.Tensor, signs: torch.Tensor
) -> torch.Tensor:
    """Each image's magnitude for op ``key`` (rank, or -1) at ``levels``, with its sign.

    The arithmetic of :meth:`OpSpec.magnitude`, ``low + level * (high - low)`` in float32,
    vectorized over ops; signed ops multiply by ``signs`` (+-1).
    """
    low, span, signed = ranges[:, key]
    mags = low + levels * span
    return torch.where(signed > 0, mags * signs, mags)


def _apply_position(
    images: torch.Tensor,
    t: _Tables,
    key: torch.Tensor,
    mags: torch.Tensor,
    generator: torch.Generator,
    interpolation: Interpolation,
) -> torch.Tensor:
    """Apply one gene position: image ``i`` gets op ``t.specs[key[i]]`` (none where ``-1``).

    One stable sort by rank groups the images op by op (ascending image index within an op, as
    ``nonzero`` would give); one ``bincount`` read back to the host sizes the groups. Returns
    the augmented images: float ``images`` (a private copy) may be modified in place, uint8
    ``images`` are left alone (returned as they are when no image is augmented).
    """
    order = torch.argsort(key, stable=True)
    counts = torch.bincount(key + 1, minlength=len(t.specs) + 1).tolist()
    if counts[0] == images.shape[0]:
        return images
    work = _plan(images, t, counts, mags[order], interpolation)
    return _run(images, order, work, generator, one_op=max(counts[1:]) == images.shape[0])


def _plan(
    images: torch.Tensor,
    t: _Tables,
    counts: list[int],
    mags: torch.Tensor,
    interpolation: Interpolation,
) -> list[_Work]:
    """The work of one position, in application order, over the sorted images.

    ``mags`` are the magnitudes in sorted order. The affine ops' images come first and become
    one fused warp; the other ops follow by rank, so ops drawing from the generator are called
    in the same order as without fusion.
    """
    dtype = images.dtype if images.dtype.is_floating_point else torch.float32
    h, w = images.shape[-2:]
    work: list[_Work] = []
    matrices: list[torch.Tensor] = []
    start = counts[0]
    pieces = mags.split_with_sizes(counts)  # one call for every op's magnitudes (views)
    for r, spec in enumerate(t.specs):
        end = start + counts[r + 1]
        if end == start:
            continue
        if r < t.n_affine:
            piece = pieces[r + 1] if dtype == mags.dtype else pieces[r + 1].to(dtype)
            matrices.append(spec.matrices(piece, h, w))
        else:
            work.append(_Work(spec, start, end, pieces[r + 1], interpolation))
        start = end
    if matrices:
        n_affine = sum(m.shape[0] for m in matrices)
        fused = matrices[0] if len(matrices) == 1 else torch.cat(matrices)
        work.insert(0, _Work(None, counts[0], counts[0] + n_affine, fused, interpolation))
    return work


def _chunks(work: list[_Work], size: int) -> list[list[_Work]]:
    """Pack the work into chunks of at most ``size`` images, splitting where allowed.

    Work that draws from the generator is never split, so it draws as if applied whole; such
    work larger than ``size`` gets a chunk of its own.
    """
    chunks: list[list[_Work]] = []
    current: list[_Work] = []
    room = size
    for item in work:
        start = item.start
        while start < item.end:
            n = item.end - start if not item.splittable else min(item.end - start, room)
            if n > room and current:
                chunks.append(current)
                current, room = [], size
            current.append(item.piece(start, start + n))
            room -= n
            start += n
            if room <= 0:
                chunks.append(current)
                current, room = [], size
    if current:
        chunks.append(current)
    return chunks


def _run(
    images: torch.Tensor,
    order: torch.Tensor,
    work: list[_Work],
    generator: torch.Generator,
    *,
    one_op: bool,
) -> torch.Tensor:
    """Apply ``work`` to the images it covers, in chunks; return the augmented batch.

    On CPU, chunks hold about ``_CHUNK_ELEMENTS`` elements, so that every temporary stays in
    cache and is small enough to be reused by the allocator (a fresh 38 MB tensor costs
    page faults on every call); ops are per-image, so chunking does not change the results.
    ``one_op``: one op takes every image (``order`` is the identity), and a batch that fits
    in one chunk is augmented whole, without gathering.
    """
    size = images.shape[0]
    if images.device.type == "cpu":
        size = max(1, _CHUNK_ELEMENTS // max(1, images[0].numel()))
    if images.dtype == torch.uint8:
        return _run_uint8(images, order, work, generator, size, one_op=one_op)
    chunks = _chunks(work, size)
    if one_op and len(chunks) == 1:
        return chunks[0][0](images, generator)
    for chunk in chunks:
        floats = images.index_select(0, order[chunk[0].start : chunk[-1].end])
        for item in chunk:
            rows = slice(item.start - chunk[0].start, item.end - chunk[0].start)
            images.index_copy_(0, order[item.start : item.end], item(floats[rows], generator))
    return images


def _run_uint8(
    images: torch.Tensor,
    order: torch.Tensor,
    work: list[_Work],
    generator: torch.Generator,
    size: int,
    *,
    one_op: bool,
) -> torch.Tensor:
    """:func:`_run` for uint8 images, which it does not modify: convert per chunk.

    The batch is gathered once in sorted order, so that each chunk is a contiguous slice,
    augmented in float and rounded back in place; one ``index_select`` then unsorts it (on
    uint8 images, much faster on CPU than scattering the chunks with ``index_copy_``). Native
    work (ops with a ``uint8`` kernel, ranked last, and the nearest fused warp, first) skips
    the float chunks and applies to its slice directly; the rest stays contiguous.
    """
    native = [item for item in work if item.native]
    chunks = _chunks([item for item in work if not item.native], size)
    if one_op and native:
        return native[0].apply_uint8(images)
    if one_op and len(chunks) == 1:
        return _from_float(chunks[0][0](_to_float(images), generator), images.dtype)
    ordered = images.index_select(0, order)
    for chunk in chunks:
        target = ordered[chunk[0].start : chunk[-1].end]
        floats = _to_float(target)
        for item, rows in zip(
            chunk, floats.split_with_sizes([i.end - i.start for i in chunk]), strict=True
        ):
            result = item(rows, generator)
            if result.untyped_storage().data_ptr() == floats.untyped_storage().data_ptr():
                result = result.clone()  # a view of its input: copy before overwriting
            rows.copy_(result)
        target.copy_(_rounded(floats))
    for item in native:
        target = ordered[item.start : item.end]
        item.apply_uint8(target, out=target)
    b = images.shape[0]
    inverse = torch.empty_like(order).scatter_(0, order, torch.arange(b, device=order.device))
    return ordered.index_select(0, inverse)


def _to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as float32 in ``[0, 1]``; float images unchanged."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)  # faster than one mixed-dtype `div`
    return images


def _from_float(images: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float images as ``dtype``: uint8 rounds ``images * 255`` (in place); float unchanged."""
    if dtype == torch.uint8:
        return _rounded(images).to(torch.uint8)
    return images


def _rounded(images: torch.Tensor) -> torch.Tensor:
    """``images * 255`` rounded and clamped to ``0..255``, to cast to uint8 (modifies ``images``).

    On float32, adding 1.5 * 2**23 to a value in ``[0, 255]`` rounds it to an integer, half to
    even as ``torch.round`` does, into the low bits of the float: the float's bits read as int32
    then cast to uint8 (modulo 256) give the rounded value. This is one pass fewer than
    ``round_`` and a cast, and on CPU both beat PyTorch's direct float -> uint8 cast several
    times; other dtypes round and go through int16.
    """
    images = images.mul_(255.0).clamp_(0.0, 255.0)
    if images.dtype == torch.float32:
        return images.add_(_ROUNDER).view(torch.int32)
    return images.round_().to(torch.int16)


def _prepare(images: object) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Validate images; return them as ``[B, C, H, W]`` and a function that undoes it.

    Float images come back as a private float32/float64 copy that the ops may modify in place;
    uint8 images come back as they are (never modified: the ops convert per chunk), and
    ``restore`` copies them if no op touched them.
    """
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
        permute = "(2, 0, 1)" if squeeze else "(0, 3, 1, 2)"
        raise InputError(
            f"`images` must have 1 or 3 channels (dimension -3), got shape {tuple(images.shape)}; "
            f"channels-last arrays need `.permute{permute}`"
        )
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise InputError(
            f"`images` must be at least 1x1 pixels (H, W), got shape {tuple(images.shape)}"
        )
    dtype = images.dtype
    private = dtype == torch.uint8  # uint8: not modified, no copy needed
    if dtype.is_floating_point:
        if x.numel():
            lo, hi = torch.stack(torch.aminmax(x)).tolist()  # one device sync
            if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
                raise InputError(
                    f"float `images` must be in [0, 1], got values in [{lo!r}, {hi!r}]; "
                    "augment before normalizing, or divide uint8 data by 255"
                )
        if dtype not in (torch.float32, torch.float64):
            x = x.float()
            private = True
    elif dtype != torch.uint8:
        raise InputError(f"`images` must be float in [0, 1] or uint8, got dtype {dtype}")

    def restore(out: torch.Tensor) -> torch.Tensor:
        if out.dtype != dtype:
            out = out.to(dtype)
        elif out.untyped_storage().data_ptr() == images.untyped_storage().data_ptr():
            out = out.clone()  # uint8 that no op touched: the output must not alias the input
        return out.squeeze(0) if squeeze else out

    return (x if private else x.clone()), restore
