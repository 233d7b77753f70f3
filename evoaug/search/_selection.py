"""Decision making: which policy of the Pareto front trains next.

Strategies: :class:`Knee` (best trade-off), :class:`Weights` (pseudo-weights or weighted sum),
:class:`Constraint` (maximize one objective subject to bounds on others). See
:class:`~evoaug.search.Selection` for how a front is validated and normalized.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from evoaug.exceptions import ConfigError
from evoaug.search._selection_base import TIE, Selection, check_weights, first_best

__all__ = ["DEFAULT_SELECTION", "SELECTIONS", "Constraint", "Knee", "Weights", "get_selection"]


class Knee(Selection):
    """The knee of the front: the best trade-off, where gaining on one objective costs most.

    In the normalized space (1 = best), the hyperplane through the extreme points (the best
    member on each objective) joins the "pure" choices; the knee is the member farthest beyond
    it towards the ideal point (Das, Structural Optimization 1999; Branke et al., PPSN 2004).
    When that plane is undefined (fewer distinct extreme points than objectives, or a normal
    that is not positive) or nobody lies beyond it, the member closest to the ideal point
    ``(1, ..., 1)`` is chosen. A front of one member gives 0.

    Example:
        >>> front = [{"a": 0.0, "b": 1.0}, {"a": 0.7, "b": 0.7}, {"a": 0.9, "b": 0.2},
        ...          {"a": 1.0, "b": 0.0}]
        >>> Knee().select(front)
        1

    """

    def _select(self, normalized: np.ndarray, raw: np.ndarray, names: tuple[str, ...]) -> int:
        n, m = normalized.shape
        closeness = -np.linalg.norm(1.0 - normalized, axis=1)
        if n == 1 or m == 1:
            return first_best(normalized.sum(axis=1), closeness)
        extremes = [first_best(normalized[:, j], normalized.sum(axis=1)) for j in range(m)]
        plane = normalized[extremes]
        if len(set(extremes)) == m and np.linalg.matrix_rank(plane) == m:
            normal = np.linalg.solve(plane, np.ones(m))
            if np.all(normal > 0):
                distance = (normalized @ normal - 1.0) / np.linalg.norm(normal)
                if distance.max() > TIE:
                    return first_best(distance, closeness)
        return first_best(closeness)

    def __repr__(self) -> str:
        return "Knee()"


class Weights(Selection):
    """Choose by objective weights, as pseudo-weights (pymoo ``PseudoWeights``) or a weighted sum.

    With ``method="pseudo"`` (Deb, *Multi-Objective Optimization Using Evolutionary
    Algorithms*, 2001) each member's pseudo-weight vector is its normalized position between
    the front's worst (0) and best (1) on each objective, divided by its sum; the member whose
    pseudo-weights are closest (L1) to the target weights wins. It picks a *region* of the front
    and is not monotone: improving a member on a heavily weighted objective can move it away
    from the target. With ``method="sum"`` the member with the highest weighted sum of
    normalized objectives wins, which is monotone and always Pareto-optimal for positive
    weights. Weights are normalized to sum to one; objectives constant on the front are left
    out (they cannot discriminate).

    Args:
        weights: Objective name to non-negative weight.
        method: ``"pseudo"`` or ``"sum"``.
        ignore_missing: Skip weighted objectives the search does not have (the default
            selection's behaviour); when none is left all objectives weigh the same. Otherwise
            a weighted objective that is missing is a ConfigError.

    Example:
        >>> front = [{"accuracy": 0.9, "fairness": 0.5}, {"accuracy": 0.8, "fairness": 0.8},
        ...          {"accuracy": 0.6, "fairness": 0.9}]
        >>> Weights({"accuracy": 0.5, "fairness": 0.5}).select(front)
        1
        >>> Weights({"accuracy": 1.0, "fairness": 0.0}, method="sum").select(front)
        0

    """

    def __init__(
        self,
        weights: Mapping[str, float],
        *,
        method: Literal["pseudo", "sum"] = "pseudo",
        ignore_missing: bool = False,
    ) -> None:
        self.weights = check_weights("weights", weights)
        if any(w < 0 for w in self.weights.values()) or not any(self.weights.values()):
            raise ConfigError(
                f"`weights` must be non-negative and not all zero, got {self.weights}"
            )
        if method not in ("pseudo", "sum"):
            raise ConfigError(f"`method` must be one of ['pseudo', 'sum'], got {method!r}")
        self.method = method
        self.ignore_missing = bool(ignore_missing)

    def __repr__(self) -> str:
        return f"Weights({self.weights!r}, method={self.method!r})"

    def validate(self, objectives: Sequence[str]) -> None:
        """Every weighted objective must be searched, unless ``ignore_missing``."""
        missing = sorted(set(self.weights) - set(objectives))
        if missing and not self.ignore_missing:
            raise ConfigError(
                f"`weights` name objectives {missing} that the search does not have; "
                f"available objectives: {list(objectives)}"
            )

    def _target(self, names: tuple[str, ...]) -> np.ndarray:
        target = np.array([self.weights.get(n, 0.0) for n in names])
        if not target.any():  # only reachable with ignore_missing
            target = np.ones(len(names))
        return target

    def _select(self, normalized: np.ndarray, raw: np.ndarray, names: tuple[str, ...]) -> int:
        varying = np.ptp(raw, axis=0) > 0
        target = self._target(names)[varying]
        if not varying.any() or not target.any():
            return 0
        target = target / target.sum()
        values = normalized[:, varying]
        if self.method == "sum":
            return first_best(values @ target)
        totals = values.sum(axis=1, keepdims=True)
        uniform = np.full_like(values, 1.0 / values.shape[1])
        pseudo = np.where(totals > 0, values / np.where(totals > 0, totals, 1.0), uniform)
        return first_best(-np.abs(pseudo - target).sum(axis=1), values @ target)


class Constraint(Selection):
    """Maximize one objective subject to lower bounds on others.

    Among members with ``objective >= threshold`` for every entry of ``at_least``, the one with
    the highest ``maximize`` wins. If no member satisfies every bound, the least-violating member
    wins instead: the smallest sum of shortfalls ``max(0, threshold - value)``, each divided by
    that objective's spread on the front (or 1 if it is constant), ties going to the higher
    ``maximize``. Thresholds are in the objectives' own units.

    Args:
        maximize: The objective to maximize.
        at_least: Objective name to the lowest acceptable value.

    Example:
        >>> front = [{"accuracy": 0.95, "fairness": 0.6}, {"accuracy": 0.9, "fairness": 0.8},
        ...          {"accuracy": 0.8, "fairness": 0.9}]
        >>> Constraint("accuracy", at_least={"fairness": 0.75}).select(front)
        1
        >>> Constraint("accuracy", at_least={"fairness": 0.99}).select(front)  # none feasible
        2

    """

    def __init__(
        self, maximize: str = "accuracy", at_least: Mapping[str, float] | None = None
    ) -> None:
        if not isinstance(maximize, str) or not maximize:
            raise ConfigError(f"`maximize` must be an objective name, got {maximize!r}")
        self.maximize = maximize
        self.at_least = check_weights("at_least", at_least) if at_least is not None else {}

    def __repr__(self) -> str:
        return f"Constraint(maximize={self.maximize!r}, at_least={self.at_least!r})"

    def validate(self, objectives: Sequence[str]) -> None:
        """``maximize`` and every bounded objective must be searched."""
        if self.maximize not in objectives:
            raise ConfigError(
                f"`maximize` must be one of {list(objectives)}, got {self.maximize!r}"
            )
        missing = sorted(set(self.at_least) - set(objectives))
        if missing:
            raise ConfigError(
                f"`at_least` names objectives {missing} that the search does not have; "
                f"available objectives: {list(objectives)}"
            )

    def _select(self, normalized: np.ndarray, raw: np.ndarray, names: tuple[str, ...]) -> int:
        goal = raw[:, names.index(self.maximize)]
        shortfall = np.zeros(len(raw))
        for name, threshold in self.at_least.items():
            column = raw[:, names.index(name)]
            spread = float(np.ptp(column)) or 1.0
            shortfall += np.maximum(0.0, threshold - column) / spread
        feasible = shortfall <= 0
        if feasible.any():
            return first_best(np.where(feasible, goal, -np.inf))
        return first_best(-shortfall, goal)


SELECTIONS: dict[str, type[Selection]] = {
    "constraint": Constraint,
    "knee": Knee,
    "weights": Weights,
}

DEFAULT_SELECTION: Selection = Weights(
    {"accuracy": 0.4, "fairness": 0.4, "difficulty": 0.1, "diversity": 0.1},
    method="sum",
    ignore_missing=True,
)
"""The default strategy: a weighted sum of normalized objectives, 0.4 accuracy, 0.4 fairness,
0.1 difficulty, 0.1 diversity, over the objectives the search has.

Neither look-ahead score ranks policies reliably on its own: Spearman against full-training
outcomes was 0.57-0.86 for look-ahead accuracy and 0.57-0.74 for the default fairness score,
worst-group accuracy, over five checks on colored digits and UTKFace (docs/benchmarks.md,
"Proxy fidelity"; 0.69-0.90 with ``fairness_metric="worst_group_gain"``), so the two weigh the
same. Difficulty and diversity are proxies further removed, so they only break near-ties. A
weighted *sum* rather than pseudo-weights because the choice should be monotone: a member that
is better on accuracy and fairness must not lose to one that is merely better on the proxies,
which pseudo-weights allow.
"""


def get_selection(spec: str | Selection | None = None, **kwargs: Any) -> Selection:
    """A selection strategy from a name (``"knee"``, ``"weights"``, ``"constraint"``) or itself.

    ``None``, and ``"weights"`` without arguments, give :data:`DEFAULT_SELECTION`; ``"knee"``
    takes no arguments; ``"constraint"`` without arguments maximizes accuracy.

    Args:
        spec: A name from :data:`SELECTIONS`, a :class:`Selection` instance, or ``None``.
        **kwargs: Arguments of the named strategy (none with an instance).

    Raises:
        ConfigError: An unknown name, or arguments the strategy does not take.

    Example:
        >>> get_selection("constraint", maximize="accuracy", at_least={"fairness": 0.8}).maximize
        'accuracy'
        >>> get_selection("weights") is DEFAULT_SELECTION
        True

    """
    if spec is None and not kwargs:
        return DEFAULT_SELECTION
    if isinstance(spec, Selection):
        if kwargs:
            raise ConfigError(
                f"`selection` is already a Selection; unexpected arguments {sorted(kwargs)}"
            )
        return spec
    if not isinstance(spec, str) or spec.lower() not in SELECTIONS:
        raise ConfigError(
            f"`selection` must be one of {sorted(SELECTIONS)} or a Selection, got {spec!r}"
        )
    name = spec.lower()
    if name == "weights" and not kwargs:
        return DEFAULT_SELECTION
    try:
        return SELECTIONS[name](**kwargs)
    except TypeError as err:
        raise ConfigError(
            f"`selection`={spec!r} got invalid arguments {sorted(kwargs)}: {err}"
        ) from err
