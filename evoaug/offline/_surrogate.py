"""Surrogate pre-screening: a regression model of the objectives, fitted on the history.

Each generation after the first, NSGA-II breeds a pool of children several times larger than
the number the search will train; the surrogate predicts their objectives from op-usage features
(:func:`~evoaug.offline.op_usage`) and only the most promising are trained. This is the
pre-selection scheme of surrogate-assisted evolutionary algorithms (Jin, "Surrogate-assisted
evolutionary computation", Swarm and Evolutionary Computation 2011): the true evaluations stay
the only values the search learns from; the surrogate only decides which children deserve one.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.infill import InfillCriterion
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from evoaug.exceptions import ConfigError
from evoaug.genome import GenomeSpace
from evoaug.offline._features import op_usage

__all__ = ["SURROGATES", "ScreenedMating", "Surrogate", "prediction_error", "surrogate_summary"]

SURROGATES = ("rf", "gp", "none")


class Surrogate:
    """Predict a policy's objectives from how much it uses each op (random forest or GP).

    Features of a genome: per op of ``space``, the expected firings per image and the expected
    firings times the mean level (:func:`~evoaug.offline.op_usage`), plus their totals. They
    ignore the order of sub-policies and genes, so equivalent genomes get equal predictions.

    ``kind="rf"``: a scikit-learn ``RandomForestRegressor`` (all objectives at once); the spread
    of its trees' predictions is the uncertainty. ``kind="gp"``: one ``GaussianProcessRegressor``
    per objective (isotropic Matern 5/2 plus white noise, normalized targets), with its posterior
    standard deviation.

    Args:
        space: The genome space of the search.
        objectives: Objective names, in the order of the value columns.
        kind: ``"rf"`` or ``"gp"``.
        seed: Seed of the forest (GP fits are deterministic).
        optimism: ``k`` in the ranking score ``mean + k * std`` (0: rank by the mean).
        n_estimators: Trees of the forest.

    Raises:
        ConfigError: A bad argument (the message names it).

    Example:
        >>> import numpy as np
        >>> from evoaug import GenomeSpace
        >>> space = GenomeSpace(["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=1)
        >>> X = space.random(np.random.default_rng(0), 24)
        >>> y = X[:, [1, 4]].sum(axis=1, keepdims=True)  # the total probability
        >>> model = Surrogate(space, ["accuracy"], n_estimators=20).fit(X, y)
        >>> mean, std = model.predict(X[:3])
        >>> mean.shape, std.shape, model.n_train
        ((3, 1), (3, 1), 24)
        >>> len(model.rank(X, 5))
        5

    """

    def __init__(
        self,
        space: GenomeSpace,
        objectives: Sequence[str],
        *,
        kind: str = "rf",
        seed: int = 0,
        optimism: float = 0.0,
        n_estimators: int = 100,
    ) -> None:
        if not isinstance(space, GenomeSpace):
            raise ConfigError(f"`space` must be an evoaug.GenomeSpace, got {type(space).__name__}")
        if kind not in ("rf", "gp"):
            raise ConfigError(f"`kind` must be one of ['rf', 'gp'], got {kind!r}")
        if isinstance(optimism, bool) or not isinstance(optimism, (int, float)) or optimism < 0:
            raise ConfigError(f"`optimism` must be a number >= 0, got {optimism!r}")
        if isinstance(n_estimators, bool) or not isinstance(n_estimators, int) or n_estimators < 1:
            raise ConfigError(f"`n_estimators` must be an int >= 1, got {n_estimators!r}")
        self.space = space
        self.objectives = tuple(objectives)
        self.kind = kind
        self.seed = int(seed)
        self.optimism = float(optimism)
        self.n_estimators = n_estimators
        self.n_train = 0
        """Finite rows the last :meth:`fit` used."""
        self._models: list[Any] = []

    @property
    def fitted(self) -> bool:
        """Whether :meth:`fit` has seen at least two finite rows."""
        return bool(self._models)

    def features(self, genomes: np.ndarray) -> np.ndarray:
        """``[n, 2 * n_ops + 2]`` features of ``[n, d]`` genomes."""
        X = np.atleast_2d(np.asarray(genomes, dtype=np.float64))
        rows = []
        for x in X:
            rate, level = op_usage(self.space.decode(x), self.space.ops)
            strength = rate * level
            rows.append(np.concatenate([rate, strength, [rate.sum(), strength.sum()]]))
        return np.array(rows)

    def fit(self, genomes: np.ndarray, values: np.ndarray) -> Surrogate:
        """Fit on ``[n, d]`` genomes and ``[n, m]`` objective values (higher is better).

        Rows with a non-finite value (failed candidates) are left out. With fewer than two
        finite rows the surrogate stays unfitted and :meth:`rank` keeps the pool's order.

        Returns:
            ``self``.

        Raises:
            ConfigError: The shapes do not match.

        """
        X = np.atleast_2d(np.asarray(genomes, dtype=np.float64))
        Y = np.asarray(values, dtype=np.float64).reshape(len(X), -1)
        if Y.shape[1] != len(self.objectives) or X.shape[1] != self.space.dim:
            raise ConfigError(
                f"`fit` needs genomes [n, {self.space.dim}] and values [n, "
                f"{len(self.objectives)}], got {list(X.shape)} and {list(Y.shape)}"
            )
        keep = np.all(np.isfinite(Y), axis=1)
        X, Y = X[keep], Y[keep]
        self.n_train = len(X)
        self._models = []
        if len(X) < 2:
            return self
        features = self.features(X)
        if self.kind == "rf":
            from sklearn.ensemble import RandomForestRegressor

            forest = RandomForestRegressor(
                n_estimators=self.n_estimators, min_samples_leaf=2, random_state=self.seed, n_jobs=1
            )
            self._models = [forest.fit(features, Y[:, 0] if Y.shape[1] == 1 else Y)]
        else:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.gaussian_process import GaussianProcessRegressor
            from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

            for j in range(Y.shape[1]):
                kernel = ConstantKernel(1.0) * Matern(
                    length_scale=1.0, nu=2.5, length_scale_bounds=(1e-2, 1e3)
                ) + WhiteKernel(1e-2, noise_level_bounds=(1e-6, 1.0))
                gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=self.seed)
                with warnings.catch_warnings():  # a bound reached is no reason to stop a search
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    self._models.append(gp.fit(features, Y[:, j]))
        return self

    def predict(self, genomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ``(mean, std)``, each ``[n, m]`` (higher is better).

        Raises:
            ConfigError: The surrogate is not fitted.

        """
        if not self.fitted:
            raise ConfigError("the surrogate is not fitted: call `fit` with at least two rows")
        features = self.features(genomes)
        if self.kind == "rf":
            forest = self._models[0]
            per_tree = np.stack([tree.predict(features) for tree in forest.estimators_])
            per_tree = per_tree.reshape(len(forest.estimators_), len(features), -1)
            return per_tree.mean(axis=0), per_tree.std(axis=0)
        columns = [gp.predict(features, return_std=True) for gp in self._models]
        mean = np.stack([c[0] for c in columns], axis=1)
        std = np.stack([c[1] for c in columns], axis=1)
        return mean, std

    def rank(self, genomes: np.ndarray, k: int) -> list[int]:
        """Indices of the ``k`` most promising genomes, best first.

        Scores are ``mean + optimism * std``; genomes are taken front by front of their
        non-dominated sorting, and within a front by decreasing crowding distance (NSGA-II's
        own survival rule, applied to predictions). Unfitted: the first ``k``, in order.
        """
        n = len(genomes)
        k = max(0, min(int(k), n))
        if not self.fitted:
            return list(range(k))
        mean, std = self.predict(genomes)
        F = -(mean + self.optimism * std)  # minimization form
        chosen: list[int] = []
        for front in NonDominatedSorting().do(F):
            front = np.asarray(front)
            if len(chosen) + len(front) <= k:
                chosen.extend(int(i) for i in front)
                continue
            crowding = calc_crowding_distance(F[front])
            order = np.argsort(-crowding, kind="stable")
            chosen.extend(int(i) for i in front[order[: k - len(chosen)]])
            break
        return chosen

    def __repr__(self) -> str:
        return f"Surrogate(kind={self.kind!r}, n_train={self.n_train}, optimism={self.optimism})"


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    _, inverse = np.unique(values, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3:
        return math.nan
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def prediction_error(
    objectives: Sequence[str], predicted: np.ndarray, actual: np.ndarray
) -> dict[str, dict[str, float | None]]:
    """How well predictions matched the trained results, per objective (failures left out).

    Returns:
        ``{"mae": {name: mean absolute error}, "spearman": {name: rank correlation}}``;
        ``None`` where it cannot be computed (fewer than 3 rows for Spearman, a constant column).

    Example:
        >>> import numpy as np
        >>> out = prediction_error(["accuracy"], np.array([[0.1], [0.2], [0.3]]),
        ...                        np.array([[0.2], [0.2], [0.5]]))
        >>> round(out["mae"]["accuracy"], 3), round(out["spearman"]["accuracy"], 3)
        (0.1, 0.866)

    """
    P = np.asarray(predicted, dtype=np.float64).reshape(-1, len(objectives))
    A = np.asarray(actual, dtype=np.float64).reshape(-1, len(objectives))
    keep = np.all(np.isfinite(A), axis=1) & np.all(np.isfinite(P), axis=1)
    P, A = P[keep], A[keep]
    out: dict[str, dict[str, float | None]] = {"mae": {}, "spearman": {}}
    for j, name in enumerate(objectives):
        mae = float(np.mean(np.abs(P[:, j] - A[:, j]))) if len(P) else math.nan
        rho = _spearman(P[:, j], A[:, j])
        out["mae"][name] = mae if math.isfinite(mae) else None
        out["spearman"][name] = rho if math.isfinite(rho) else None
    return out


class ScreenedMating(InfillCriterion):  # type: ignore[misc]
    """A pymoo mating that breeds ``pool_size`` children and keeps those ``screen`` picks.

    ``screen(genomes, k)`` returns the indices of the ``k`` children to keep; the search passes
    :meth:`Surrogate.rank`. The inner mating (selection, crossover, mutation, duplicate
    elimination) and the algorithm's random generator are used as they are, so a seeded search
    with a deterministic screen asks for the same genomes every time.

    Args:
        mating: The algorithm's own mating (``algorithm.mating``).
        pool_size: Children bred per generation before screening.
        screen: ``screen(genomes [n, d], k) -> list of k indices``.

    """

    def __init__(
        self, mating: Any, pool_size: int, screen: Callable[[np.ndarray, int], list[int]]
    ) -> None:
        super().__init__(eliminate_duplicates=mating.eliminate_duplicates)
        self.mating = mating
        self.pool_size = int(pool_size)
        self.screen = screen

    def do(
        self, problem: Any, pop: Any, n_offsprings: int, random_state: Any = None, **kwargs: Any
    ) -> Any:
        """Breed the pool with the inner mating, then keep ``n_offsprings`` of it."""
        pool = self.mating.do(
            problem, pop, max(self.pool_size, n_offsprings), random_state=random_state, **kwargs
        )
        if len(pool) <= n_offsprings:
            return pool
        X = np.asarray(pool.get("X"), dtype=np.float64).reshape(len(pool), -1)
        return pool[np.asarray(self.screen(X, n_offsprings), dtype=np.int64)]


def surrogate_summary(
    generation: int,
    surrogate: Surrogate,
    pool_size: int,
    kept: int,
    error: Mapping[str, Mapping[str, float | None]] | None,
) -> dict[str, Any]:
    """One line of ``surrogate.jsonl``."""
    return {
        "generation": int(generation),
        "kind": surrogate.kind,
        "n_train": surrogate.n_train,
        "pool": int(pool_size),
        "kept": int(kept),
        "mae": None if error is None else dict(error["mae"]),
        "spearman": None if error is None else dict(error["spearman"]),
    }
