import math
import warnings

import numpy as np
import pytest

from evoaug import ConfigError, Policy
from evoaug.search import (
    DEFAULT_SELECTION,
    SELECTIONS,
    Constraint,
    Knee,
    Selection,
    Weights,
    get_selection,
)


def _front(*rows: tuple[float, ...], names: tuple[str, ...] = ("accuracy", "fairness")) -> list:
    identity = Policy.preset("identity")
    return [(identity, dict(zip(names, row, strict=True))) for row in rows]


CONVEX = _front((0.0, 1.0), (0.5, 0.95), (0.8, 0.8), (0.95, 0.4), (1.0, 0.0))


def test_knee_picks_the_point_farthest_beyond_the_extremes_plane() -> None:
    # plane a + b = 1; distances: 0.45, 0.6, 0.35 -> index 2
    assert Knee().select(CONVEX) == 2
    three = _front(
        (1.0, 0.0, 0.0),
        (0.0, 1.0, 0.0),
        (0.0, 0.0, 1.0),
        (0.6, 0.6, 0.6),
        (0.5, 0.5, 0.4),
        names=("a", "b", "c"),
    )
    assert Knee().select(three) == 3


def test_knee_falls_back_to_the_point_closest_to_the_ideal() -> None:
    assert Knee().select(_front((0.3, 0.9))) == 0
    # a concave front: nobody lies beyond the plane -> closest to (1, 1) after normalization
    concave = _front((0.0, 1.0), (0.3, 0.35), (0.6, 0.15), (1.0, 0.0))
    assert Knee().select(concave) == 2  # distances to (1, 1): 1, 0.955, 0.939, 1
    # one objective constant: extremes coincide -> closest to ideal
    assert Knee().select(_front((0.2, 0.5), (0.9, 0.5), (0.4, 0.5))) == 1


def test_weights_pseudo_matches_pymoo_pseudo_weights() -> None:
    with warnings.catch_warnings():  # pymoo.core.decision_making imports a deprecated scipy path
        warnings.simplefilter("ignore", DeprecationWarning)
        from pymoo.mcdm.pseudo_weights import PseudoWeights

    rng = np.random.default_rng(0)
    for weights in ([0.5, 0.5], [0.9, 0.1], [0.2, 0.8]):
        a = np.sort(rng.random(12))
        b = 1 - np.sqrt(a) + 0.01 * rng.random(12)
        front = _front(*zip(a, b, strict=True))
        expected = PseudoWeights(np.array(weights)).do(-np.column_stack([a, b]))
        chosen = Weights({"accuracy": weights[0], "fairness": weights[1]}).select(front)
        assert chosen == expected


def test_weights_sum_is_monotone_and_weights_are_normalized() -> None:
    front = _front(
        (1.0, 1.0, 0.0),
        (0.8, 0.8, 0.25),
        (0.0, 0.0, 1.0),
        names=("accuracy", "fairness", "diversity"),
    )
    # pseudo-weights prefer the member whose *position* matches the weights (1); the weighted
    # sum prefers the one that is better on the heavily weighted objectives (0)
    weights = {"accuracy": 0.4, "fairness": 0.4, "diversity": 0.2}
    assert Weights(weights).select(front) == 1
    assert Weights(weights, method="sum").select(front) == 0
    doubled = {k: 2 * v for k, v in weights.items()}
    assert Weights(doubled, method="sum").select(front) == 0


def test_weights_ignore_constant_objectives() -> None:
    front = _front((0.9, 0.5), (0.6, 0.5))
    assert Weights({"accuracy": 0.1, "fairness": 0.9}).select(front) == 0


def test_default_selection_adapts_to_the_objectives_present() -> None:
    assert isinstance(DEFAULT_SELECTION, Weights) and DEFAULT_SELECTION.method == "sum"
    four = _front(
        (0.90, 0.60, 0.9, 0.9),
        (0.88, 0.85, 0.1, 0.2),
        (0.70, 0.70, 1.0, 1.0),
        names=("accuracy", "fairness", "difficulty", "diversity"),
    )
    assert DEFAULT_SELECTION.select(four) == 1
    assert DEFAULT_SELECTION.select(_front((0.9, 0.5), (0.85, 0.9), (0.5, 0.95))) == 1
    custom = _front((0.1, 0.9), (0.6, 0.6), (0.9, 0.1), names=("x", "y"))
    assert DEFAULT_SELECTION.select(custom) == 1  # no weighted objective: equal weights


def test_constraint_maximizes_subject_to_bounds_and_falls_back_to_least_violation() -> None:
    front = _front((0.95, 0.60), (0.90, 0.80), (0.85, 0.82), (0.80, 0.90))
    assert Constraint("accuracy", at_least={"fairness": 0.8}).select(front) == 1
    assert Constraint("fairness", at_least={"accuracy": 0.85}).select(front) == 2
    assert Constraint("accuracy").select(front) == 0
    # nobody reaches 0.95 fairness: the closest (0.90) wins
    assert Constraint("accuracy", at_least={"fairness": 0.95}).select(front) == 3
    # two bounds, none feasible: the smallest summed shortfall, each over its spread, wins:
    # accuracy (spread 0.15): .13 .47 .80 1.13; fairness (spread 0.30): .83 .17 .10 0
    two = Constraint("accuracy", at_least={"accuracy": 0.97, "fairness": 0.85})
    assert two.select(front) == 1


def test_get_selection() -> None:
    assert sorted(SELECTIONS) == ["constraint", "knee", "weights"]
    assert isinstance(get_selection("knee"), Knee)
    assert get_selection() is DEFAULT_SELECTION and get_selection("weights") is DEFAULT_SELECTION
    assert get_selection("constraint").select(CONVEX) == 4  # max accuracy
    assert isinstance(get_selection("Weights", weights={"accuracy": 1.0}), Weights)
    chosen = Knee()
    assert get_selection(chosen) is chosen
    assert issubclass(Constraint, Selection)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: get_selection("kne"),
            r"`selection` must be one of \['constraint', 'knee', 'weights'\] or a Selection, "
            r"got 'kne'",
        ),
        (lambda: get_selection(3), "`selection` must be one of .* got 3"),
        (
            lambda: get_selection("weights", weight={"accuracy": 1.0}),
            r"`selection`='weights' got invalid arguments \['weight'\]",
        ),
        (lambda: get_selection("knee", weights={}), r"invalid arguments \['weights'\]"),
        (
            lambda: get_selection(Knee(), maximize="a"),
            r"already a Selection; unexpected arguments \['maximize'\]",
        ),
        (lambda: Weights({}), "`weights` must be a non-empty mapping"),
        (lambda: Weights({"accuracy": -1.0}), "`weights` must be non-negative and not all zero"),
        (
            lambda: Weights({"accuracy": math.nan}),
            r"`weights\['accuracy'\]` must be a finite number",
        ),
        (
            lambda: Weights({"accuracy": 1.0}, method="max"),
            r"`method` must be one of \['pseudo', 'sum'\], got 'max'",
        ),
        (lambda: Constraint(""), "`maximize` must be an objective name"),
        (
            lambda: Weights({"accuracy": 1.0, "speed": 1.0}).select(CONVEX),
            r"`weights` name objectives \['speed'\] that the search does not have; "
            r"available objectives: \['accuracy', 'fairness'\]",
        ),
        (
            lambda: Constraint("speed").select(CONVEX),
            r"`maximize` must be one of \['accuracy', 'fairness'\], got 'speed'",
        ),
        (
            lambda: Constraint(at_least={"speed": 1.0}).select(CONVEX),
            r"`at_least` names objectives \['speed'\]",
        ),
        (lambda: Knee().select([]), "`front` must be a non-empty sequence"),
        (
            lambda: Knee().select([{"a": 1.0}, {"b": 1.0}]),
            r"`front\[1\]` has objectives \['b'\], but `front\[0\]` has \['a'\]",
        ),
        (lambda: Knee().select([{"a": math.nan}]), "objective values must be finite"),
        (lambda: Knee().select([3]), r"`front\[0\]` must be a \(policy, objectives\) pair"),
    ],
)
def test_bad_selection_input(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        call()
