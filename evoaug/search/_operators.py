"""Variation operators that respect the genome's structure (pymoo operators).

A genome is K sub-policies of L genes, each gene three coordinates ``(op, probability, level)``
(see :class:`~evoaug.GenomeSpace`). Generic real-valued operators (SBX, polynomial mutation) treat
the op coordinate as a number and blend sub-policies gene by gene; these operators instead swap
whole sub-policies, resample ops as categories and perturb probabilities and levels, in the spirit
of the sub-policy search of AutoAugment (Cubuk et al., CVPR 2019).

Every operator draws from the ``random_state`` (a ``numpy.random.Generator``) that pymoo passes
in, never from global state, so a seeded search is reproducible and resumable.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import ElementwiseDuplicateElimination
from pymoo.core.mutation import Mutation

from evoaug.exceptions import ConfigError
from evoaug.genome import GENE_WIDTH, GenomeSpace

__all__ = ["GeneMutation", "PolicyDuplicateElimination", "SubPolicyCrossover"]


def _check_space(space: object) -> GenomeSpace:
    if not isinstance(space, GenomeSpace):
        raise ConfigError(f"`space` must be an evoaug.GenomeSpace, got {type(space).__name__}")
    return space


def _rate(name: str, value: object, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"`{name}` must be a number in [0, 1], got {value!r}")
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (low_ok and value <= 1.0):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"`{name}` must be a number in {interval}, got {value!r}")
    return float(value)


def _generator(random_state: object) -> np.random.Generator:
    if not isinstance(random_state, np.random.Generator):
        raise ConfigError(
            "`random_state` must be a numpy.random.Generator (pymoo passes the algorithm's), "
            f"got {type(random_state).__name__}"
        )
    return random_state


class SubPolicyCrossover(Crossover):  # type: ignore[misc]
    """Uniform crossover of whole sub-policies: two parents give two children.

    For every sub-policy slot a fair coin decides which parent the first child copies it from;
    the second child gets the other parent's sub-policy. Genes are never split, so every child
    sub-policy is one a parent had (a sub-policy is a unit of meaning: its ops act together).

    Args:
        space: The genome space of the parents.
        prob: Chance that a mating recombines at all (otherwise the children copy the parents).

    Example:
        >>> import numpy as np
        >>> from evoaug import GenomeSpace
        >>> space = GenomeSpace(n_subpolicies=3, n_genes=1)
        >>> parents = np.stack([np.zeros((1, space.dim)), np.ones((1, space.dim))])
        >>> children = SubPolicyCrossover(space)._do(
        ...     None, parents, random_state=np.random.default_rng(0)
        ... )
        >>> children.shape
        (2, 1, 9)
        >>> bool(np.all(children[0] + children[1] == 1.0))
        True

    """

    def __init__(self, space: GenomeSpace, prob: float = 0.9) -> None:
        super().__init__(2, 2, prob=_rate("prob", prob))
        self.space = _check_space(space)

    def _do(
        self, problem: Any, X: np.ndarray, *args: Any, random_state: Any = None, **kwargs: Any
    ) -> np.ndarray:
        rng = _generator(random_state)
        space = self.space
        n_matings = X.shape[1]
        from_second = rng.random((n_matings, space.n_subpolicies)) < 0.5
        width = GENE_WIDTH * space.n_genes
        mask = np.repeat(from_second, width, axis=1)
        first = np.where(mask, X[1], X[0])
        second = np.where(mask, X[0], X[1])
        return np.stack([first, second])


class GeneMutation(Mutation):  # type: ignore[misc]
    """Resample ops as categories; perturb probabilities and levels with clipped Gaussian noise.

    Every gene of a mutated genome independently

    * with chance ``op_prob`` gets a different op, uniformly among the other ops of the space,
      placed at the centre of its bin;
    * with chance ``value_prob`` gets ``N(0, sigma)`` noise on its probability, and independently
      with chance ``value_prob`` on its level; both are clipped to ``[0, 1]`` (0 and 1 are
      meaningful: never and always, weakest and strongest).

    Both rates default to ``1 / (K * L)``: a child changes on average one op, one probability and
    one level, the usual "one variable per child" rate of polynomial mutation applied to each of
    the gene's three roles, so offspring stay close to their parents while every gene can move.

    Args:
        space: The genome space.
        op_prob: Per-gene chance of an op change; ``None`` means ``1 / (K * L)``.
        sigma: Standard deviation of the noise on probabilities and levels (unit interval scale).
        prob: Chance that a child is mutated at all.
        value_prob: Per-coordinate chance of noise on a probability or a level; ``None`` means
            ``1 / (K * L)``.

    Example:
        >>> import numpy as np
        >>> from evoaug import GenomeSpace
        >>> space = GenomeSpace(ops=["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=2)
        >>> x = np.full((4, space.dim), 0.5)
        >>> y = GeneMutation(space)._do(None, x, random_state=np.random.default_rng(0))
        >>> y.shape, bool(np.all((y >= 0) & (y <= 1)))
        ((4, 12), True)

    """

    def __init__(
        self,
        space: GenomeSpace,
        op_prob: float | None = None,
        sigma: float = 0.1,
        prob: float = 1.0,
        *,
        value_prob: float | None = None,
    ) -> None:
        space = _check_space(space)
        default = 1.0 / (space.n_subpolicies * space.n_genes)
        if (
            isinstance(sigma, bool)
            or not isinstance(sigma, (int, float))
            or not (math.isfinite(sigma) and sigma > 0)
        ):
            raise ConfigError(f"`sigma` must be a positive number, got {sigma!r}")
        super().__init__(prob=_rate("prob", prob))
        self.space = space
        self.op_prob = default if op_prob is None else _rate("op_prob", op_prob)
        self.value_prob = default if value_prob is None else _rate("value_prob", value_prob)
        self.sigma = float(sigma)

    def _do(
        self, problem: Any, X: np.ndarray, *args: Any, random_state: Any = None, **kwargs: Any
    ) -> np.ndarray:
        rng = _generator(random_state)
        n_ops = len(self.space.ops)
        genes = np.array(X, dtype=np.float64, copy=True).reshape(len(X), -1, GENE_WIDTH)
        n, g = genes.shape[:2]
        # All draws up front, in a fixed order, so the stream does not depend on what mutates.
        change_op = rng.random((n, g)) < self.op_prob
        shift = rng.integers(1, max(n_ops, 2), size=(n, g))
        perturb = rng.random((n, g, 2)) < self.value_prob
        noise = rng.normal(0.0, self.sigma, size=(n, g, 2))
        if n_ops > 1:
            current = np.minimum((np.clip(genes[..., 0], 0.0, 1.0) * n_ops).astype(int), n_ops - 1)
            new_op = (current + shift) % n_ops
            genes[..., 0] = np.where(change_op, (new_op + 0.5) / n_ops, genes[..., 0])
        genes[..., 1:] = np.clip(genes[..., 1:] + np.where(perturb, noise, 0.0), 0.0, 1.0)
        return genes.reshape(n, -1)


class PolicyDuplicateElimination(ElementwiseDuplicateElimination):  # type: ignore[misc]
    """Treat two genomes as duplicates when they decode to the same policy.

    Same policy means the same op in every gene (the same op bin) and probabilities and levels
    equal within ``atol`` (default ``1e-6``). Two genomes whose op coordinates differ inside one
    bin are therefore duplicates: evaluating both would waste a candidate. Comparisons are
    vectorized over the population instead of decoding pairs of policies.

    Args:
        space: The genome space.
        atol: Largest difference of a probability or level still counted as equal.

    Example:
        >>> import numpy as np
        >>> from evoaug import GenomeSpace
        >>> space = GenomeSpace(ops=["Identity", "Invert"], n_subpolicies=1, n_genes=1)
        >>> elim = PolicyDuplicateElimination(space)
        >>> elim.same(np.array([0.1, 0.5, 0.5]), np.array([0.4, 0.5, 0.5]))
        True
        >>> elim.same(np.array([0.1, 0.5, 0.5]), np.array([0.6, 0.5, 0.5]))
        False

    """

    def __init__(self, space: GenomeSpace, atol: float = 1e-6) -> None:
        super().__init__()
        self.space = _check_space(space)
        if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not atol >= 0:
            raise ConfigError(f"`atol` must be a non-negative number, got {atol!r}")
        self.atol = float(atol)

    def _keys(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        genes = np.clip(np.asarray(X, dtype=np.float64), 0.0, 1.0)
        n_genes = self.space.n_subpolicies * self.space.n_genes
        genes = genes.reshape(len(genes), n_genes, GENE_WIDTH)
        n_ops = len(self.space.ops)
        ops = np.minimum((genes[..., 0] * n_ops).astype(int), n_ops - 1)
        return ops, genes[..., 1:].reshape(len(genes), 2 * n_genes)

    def matches(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Boolean ``[len(a), len(b)]``: which pairs decode to the same policy."""
        ops_a, values_a = self._keys(a)
        ops_b, values_b = self._keys(b)
        same_ops = np.all(ops_a[:, None, :] == ops_b[None, :, :], axis=2)
        close = np.max(np.abs(values_a[:, None, :] - values_b[None, :, :]), axis=2) <= self.atol
        return np.asarray(same_ops & close)

    def same(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether genomes ``a`` and ``b`` decode to the same policy."""
        return bool(self.matches(np.atleast_2d(a), np.atleast_2d(b))[0, 0])

    def is_equal(self, a: Any, b: Any) -> bool:
        """Pymoo's pairwise test on two individuals."""
        return self.same(a.X, b.X)

    def _do(self, pop: Any, other: Any, is_duplicate: np.ndarray) -> np.ndarray:
        X = pop.get("X")
        if other is None:
            # Within one population: an individual is a duplicate of an earlier one.
            matches = np.triu(self.matches(X, X), k=1)
            is_duplicate[np.any(matches, axis=0)] = True
        else:
            is_duplicate[np.any(self.matches(X, other.get("X")), axis=1)] = True
        return is_duplicate
