"""The genome: a flat vector in ``[0, 1]^d`` that encodes a policy of fixed shape.

A :class:`GenomeSpace` fixes the op vocabulary, the number of sub-policies K and genes per
sub-policy L. Each gene takes three coordinates: the op (the unit interval cut into one bin per
op), the probability and the level. So ``d = 3 * K * L`` and every point of the cube decodes to a
valid policy, which lets generic real-valued operators (and pymoo) work on it; the search issue's
structure-aware operators use :meth:`GenomeSpace.gene_slice` to act on whole genes and
sub-policies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.ops import BUILTIN_OPS, get_op
from evoaug.policy import (
    INTERPOLATIONS,
    MAGNITUDE_SAMPLINGS,
    Gene,
    Interpolation,
    MagnitudeSampling,
    Policy,
    SubPolicy,
)

__all__ = ["GENE_WIDTH", "GenomeSpace"]

GENE_WIDTH = 3  # op, probability, level


class GenomeSpace:
    """Encode and decode policies of K sub-policies of L genes as vectors in ``[0, 1]^d``.

    Args:
        ops: Op vocabulary; defaults to every built-in op.
        n_subpolicies: K, the number of sub-policies (default 5, as in AutoAugment).
        n_genes: L, the genes per sub-policy (default 2, as in AutoAugment).
        magnitude_sampling: Passed to every decoded :class:`~evoaug.Policy`.
        interpolation: Passed to every decoded :class:`~evoaug.Policy` (``"bilinear"`` or
            ``"nearest"``).

    Raises:
        ConfigError: Empty or duplicate ops, an unknown op, K / L out of range, or an unknown
            ``magnitude_sampling`` or ``interpolation``.

    Example:
        >>> import numpy as np
        >>> space = GenomeSpace(n_subpolicies=2, n_genes=2)
        >>> space.dim
        12
        >>> x = space.random(np.random.default_rng(0))
        >>> policy = space.decode(x)
        >>> len(policy), policy.max_genes
        (2, 2)
        >>> bool(np.allclose(space.encode(policy)[1::3], x[1::3]))
        True

    """

    def __init__(
        self,
        ops: Sequence[str] | None = None,
        *,
        n_subpolicies: int = 5,
        n_genes: int = 2,
        magnitude_sampling: MagnitudeSampling = "fixed",
        interpolation: Interpolation = "bilinear",
    ) -> None:
        names = tuple(BUILTIN_OPS if ops is None else ops)
        if not names:
            raise ConfigError("`ops` must name at least one op, got an empty list")
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"`ops` must not repeat names, got duplicates {dupes}")
        for name in names:
            get_op(name)
        if magnitude_sampling not in MAGNITUDE_SAMPLINGS:
            raise ConfigError(
                f"`magnitude_sampling` must be one of {MAGNITUDE_SAMPLINGS}, "
                f"got {magnitude_sampling!r}"
            )
        if interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"`interpolation` must be one of {INTERPOLATIONS}, got {interpolation!r}"
            )
        self.ops: tuple[str, ...] = names
        self.n_subpolicies = check_int("n_subpolicies", n_subpolicies, low=1, high=256)
        self.n_genes = check_int("n_genes", n_genes, low=1, high=16)
        self.magnitude_sampling: MagnitudeSampling = magnitude_sampling
        self.interpolation: Interpolation = interpolation
        self._index = {n: i for i, n in enumerate(names)}

    @property
    def dim(self) -> int:
        """Length d of a genome vector."""
        return GENE_WIDTH * self.n_subpolicies * self.n_genes

    def gene_slice(self, subpolicy: int, gene: int) -> slice:
        """The coordinates ``(op, probability, level)`` of one gene."""
        start = GENE_WIDTH * (subpolicy * self.n_genes + gene)
        return slice(start, start + GENE_WIDTH)

    def subpolicy_slice(self, subpolicy: int) -> slice:
        """The coordinates of one whole sub-policy."""
        width = GENE_WIDTH * self.n_genes
        return slice(subpolicy * width, (subpolicy + 1) * width)

    def op_coordinate(self, op: str) -> float:
        """Centre of the op's bin on the unit interval."""
        return (self._index[op] + 0.5) / len(self.ops)

    def op_at(self, value: float) -> str:
        """The op whose bin contains ``value``."""
        i = min(int(float(value) * len(self.ops)), len(self.ops) - 1)
        return self.ops[max(i, 0)]

    def decode(self, x: Sequence[float] | np.ndarray) -> Policy:
        """The policy a genome encodes (coordinates are clipped to ``[0, 1]``).

        Raises:
            ConfigError: ``x`` has the wrong length or holds NaN.

        """
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        if v.shape[0] != self.dim:
            raise ConfigError(f"genome must have length {self.dim}, got {v.shape[0]}")
        if not np.all(np.isfinite(v)):
            raise ConfigError("genome must hold finite numbers, got NaN or inf")
        v = np.clip(v, 0.0, 1.0)
        subs = []
        for k in range(self.n_subpolicies):
            genes = []
            for j in range(self.n_genes):
                op, prob, level = v[self.gene_slice(k, j)]
                name = self.op_at(op)
                genes.append(Gene(name, float(prob), float(level)))
            subs.append(SubPolicy(tuple(genes)))
        return Policy(
            tuple(subs),
            magnitude_sampling=self.magnitude_sampling,
            interpolation=self.interpolation,
        )

    def encode(self, policy: Policy) -> np.ndarray:
        """The genome of ``policy``; sub-policies are cycled or padded to fit K and L.

        Shorter sub-policies are padded with ``Identity`` genes (or with probability-0 copies of
        their last gene when ``Identity`` is not in the vocabulary); a policy with more
        sub-policies than K keeps the first K.

        Raises:
            ConfigError: The policy uses ops outside this space, or a sub-policy longer than L.

        """
        missing = sorted(set(policy.ops) - set(self.ops))
        if missing:
            raise ConfigError(
                f"policy uses ops {missing} that are not in this genome space's `ops` "
                f"{list(self.ops)}"
            )
        if policy.max_genes > self.n_genes:
            raise ConfigError(
                f"policy has sub-policies of {policy.max_genes} genes; this space holds "
                f"`n_genes`={self.n_genes}"
            )
        out = np.zeros(self.dim)
        subs = policy.sub_policies
        for k in range(self.n_subpolicies):
            sub = subs[k % len(subs)]
            for j in range(self.n_genes):
                if j < len(sub):
                    gene = sub.genes[j]
                    values = (self.op_coordinate(gene.op), gene.probability, gene.level)
                elif "Identity" in self._index:
                    values = (self.op_coordinate("Identity"), 0.0, 0.0)
                else:
                    last = sub.genes[-1]
                    values = (self.op_coordinate(last.op), 0.0, last.level)
                out[self.gene_slice(k, j)] = values
        return out

    def random(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Uniform random genomes: shape ``[d]``, or ``[n, d]`` when ``n`` is given."""
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(f"`rng` must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng.random(self.dim if n is None else (n, self.dim))

    def fit(self, policy: Policy) -> Policy | None:
        """``policy`` cut to this space's first K sub-policies and L genes.

        Returns:
            The cut policy (named as ``policy``), or ``None`` when it uses an op outside the
            space's vocabulary.

        Example:
            >>> space = GenomeSpace(n_subpolicies=2, n_genes=1)
            >>> fitted = space.fit(Policy.preset("autoaugment-cifar10"))
            >>> len(fitted), fitted.max_genes
            (2, 1)
        """
        subs = tuple(SubPolicy(sub.genes[: self.n_genes]) for sub in policy.sub_policies)
        fitted = Policy(subs[: self.n_subpolicies], name=policy.name)
        return fitted if set(fitted.ops) <= set(self.ops) else None

    def fit_presets(self, names: Sequence[str]) -> list[Policy]:
        """The named presets cut to the space by :meth:`fit`, in order, deduplicated.

        Presets that use ops outside the space are left out. A search seeds its first
        population with them.

        Example:
            >>> names = ["identity", "autoaugment-cifar10", "identity"]
            >>> [p.name for p in GenomeSpace(n_subpolicies=2).fit_presets(names)]
            ['identity', 'autoaugment-cifar10']
            >>> [p.name for p in GenomeSpace(ops=["Identity", "Invert"]).fit_presets(names)]
            ['identity']
        """
        fitted = [self.fit(Policy.preset(name)) for name in names]
        return [p for p in dict.fromkeys(fitted) if p is not None]

    def __repr__(self) -> str:
        return (
            f"GenomeSpace(ops={len(self.ops)} ops, n_subpolicies={self.n_subpolicies}, "
            f"n_genes={self.n_genes}, magnitude_sampling={self.magnitude_sampling!r}, "
            f"interpolation={self.interpolation!r})"
        )
