"""The fairness objective equals fairlearn's MetricFrame computed by hand on θ' predictions."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
)
from sklearn.metrics import accuracy_score
from torch import nn

from evoaug import ConfigError, Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe
from evoaug.objectives import CandidateContext, Fairness, register_objective, unregister_objective

CAPTURED: list[dict[str, Any]] = []
POLICIES = [
    Policy.preset("identity"),
    Policy.preset("trivialaugment"),
    Policy.preset("randaugment"),
]


@pytest.fixture
def spy() -> Iterator[str]:
    @register_objective("prediction_spy")
    def capture(ctx: CandidateContext) -> float:
        y_true, y_pred, groups = ctx.lookahead_predictions()
        model = ctx.lookahead_model()
        with torch.no_grad():
            direct = model(ctx.normalize(ctx.val_probe.images)).argmax(1).numpy()
        CAPTURED.append({"y_true": y_true, "y_pred": y_pred, "groups": groups, "direct": direct})
        return 0.0

    yield "prediction_spy"
    unregister_objective("prediction_spy")
    CAPTURED.clear()


def _run(
    model: nn.Module, probes: tuple[Probe, Probe], spy: str, metric: str
) -> list[dict[str, float]]:
    ev = Evaluator(
        objectives=("fairness", "accuracy", spy),
        fairness_metric=metric,
        lookahead_steps=5,
        batch_size=32,
    )
    results = ev.evaluate(
        model, F.cross_entropy, OptimizerSpec("sgd", 0.05, momentum=0.9), *probes, POLICIES, seed=2
    )
    assert all(r.ok for r in results), [r.failure for r in results]
    return [r.objectives for r in results]


def test_worst_group_accuracy_is_metricframe_group_min(
    model: nn.Module, probes: tuple[Probe, Probe], spy: str
) -> None:
    scores = _run(model, probes, spy, "worst_group_accuracy")
    assert len(CAPTURED) == len(POLICIES)
    for objectives, seen in zip(scores, CAPTURED, strict=True):
        assert np.array_equal(seen["y_pred"], seen["direct"])
        assert np.array_equal(seen["groups"], probes[1].groups.numpy())  # type: ignore[union-attr]
        frame = MetricFrame(
            metrics=accuracy_score,
            y_true=seen["y_true"],
            y_pred=seen["y_pred"],
            sensitive_features=seen["groups"],
        )
        assert objectives["fairness"] == pytest.approx(float(frame.group_min()), abs=1e-12)
        assert objectives["accuracy"] == pytest.approx(
            accuracy_score(seen["y_true"], seen["y_pred"]), abs=1e-12
        )
        assert objectives["fairness"] <= objectives["accuracy"]
    assert len({s["fairness"] for s in scores}) > 1  # the policies differ


def test_accuracy_difference_is_negated(
    model: nn.Module, probes: tuple[Probe, Probe], spy: str
) -> None:
    scores = _run(model, probes, spy, "accuracy_difference")
    for objectives, seen in zip(scores, CAPTURED, strict=True):
        frame = MetricFrame(
            metrics=accuracy_score,
            y_true=seen["y_true"],
            y_pred=seen["y_pred"],
            sensitive_features=seen["groups"],
        )
        assert objectives["fairness"] == pytest.approx(-float(frame.difference()), abs=1e-12)
        assert objectives["fairness"] <= 0.0


@pytest.mark.parametrize(
    ("metric", "reference"),
    [
        ("equalized_odds_difference", equalized_odds_difference),
        ("demographic_parity_difference", demographic_parity_difference),
    ],
)
def test_binary_metrics_are_negated_fairlearn_values(
    digits: tuple[torch.Tensor, torch.Tensor], spy: str, metric: str, reference: Any
) -> None:
    images, labels = digits
    binary = (labels >= 5).long()
    groups = (labels % 2).long()  # odd and even digits
    train = Probe(images[:256], binary[:256])
    val = Probe(images[1000:1200], binary[1000:1200], groups[1000:1200])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))
    scores = _run(model, (train, val), spy, metric)
    for objectives, seen in zip(scores, CAPTURED, strict=True):
        expected = reference(seen["y_true"], seen["y_pred"], sensitive_features=seen["groups"])
        assert objectives["fairness"] == pytest.approx(-float(expected), abs=1e-12)


def test_binary_metric_rejects_multiclass_and_missing_groups(probes: tuple[Probe, Probe]) -> None:
    train, val = probes
    with pytest.raises(ConfigError, match=r"binary labels in \{0, 1\} only"):
        Fairness("demographic_parity_difference").check(train, val)
    with pytest.raises(ConfigError, match=r"needs group ids"):
        Fairness().check(train, train)
    with pytest.raises(ConfigError, match=r"`fairness_metric` must be one of"):
        Fairness("gini")


def _no_dropout(model: nn.Module) -> nn.Module:
    net = copy.deepcopy(model)
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0  # recalibration by hand below cannot replay the evaluator's dropout masks
    return net


@pytest.mark.parametrize("vectorize", [False, True])
def test_worst_group_gain_is_the_smallest_change_of_a_group_accuracy(
    model: nn.Module, probes: tuple[Probe, Probe], vectorize: bool
) -> None:
    net = _no_dropout(model)
    seen: list[dict[str, Any]] = []

    @register_objective("gain_spy")
    def capture(ctx: CandidateContext) -> float:
        # θ by hand: the live weights, BatchNorm recomputed from the same clean images.
        theta = copy.deepcopy(net).train()
        for m in theta.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        with torch.no_grad():
            theta(ctx.train_subset(128).images)
            by_hand = theta.eval()(ctx.val_probe.images).argmax(1).numpy()
        seen.append(
            {"before": ctx.reference_predictions(), "after": ctx.lookahead_predictions(),
             "by_hand": by_hand}
        )  # fmt: skip
        return 0.0

    try:
        ev = Evaluator(
            objectives=("fairness", "gain_spy"), fairness_metric="worst_group_gain",
            lookahead_steps=5, batch_size=32, vectorize=vectorize,
        )  # fmt: skip
        results = ev.evaluate(
            net, F.cross_entropy, OptimizerSpec("sgd", 0.05, momentum=0.9), *probes, POLICIES,
            seed=2,
        )  # fmt: skip
    finally:
        unregister_objective("gain_spy")
    assert all(r.ok for r in results), [r.failure for r in results]
    for result, s in zip(results, seen, strict=True):
        (y_true, before, groups), (_, after, _) = s["before"], s["after"]
        assert np.array_equal(before, s["by_hand"])
        gains = [
            np.mean(after[groups == g] == y_true[groups == g])
            - np.mean(before[groups == g] == y_true[groups == g])
            for g in np.unique(groups)
        ]
        assert result.objectives["fairness"] == pytest.approx(min(gains), abs=1e-12)
    assert len({r.objectives["fairness"] for r in results}) > 1  # the policies differ
    # θ is the same reference for every candidate (computed once).
    assert all(np.array_equal(s["before"][1], seen[0]["before"][1]) for s in seen)


def test_worst_group_gain_changes_nothing_else(
    model: nn.Module, probes: tuple[Probe, Probe]
) -> None:
    """The reference pass (recalibration with dropout on) leaves the other objectives' values,
    the model and the global RNG as they would be without it, in either objective order."""

    def run(objectives: tuple[str, ...], metric: str) -> list[dict[str, float]]:
        ev = Evaluator(
            objectives=objectives, fairness_metric=metric, lookahead_steps=5, batch_size=32
        )
        results = ev.evaluate(
            model, F.cross_entropy, OptimizerSpec("sgd", 0.05, momentum=0.9), *probes,
            POLICIES, seed=3,
        )  # fmt: skip
        assert all(r.ok for r in results), [r.failure for r in results]
        return [r.objectives for r in results]

    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(11)
    rng = torch.get_rng_state()
    plain = run(("accuracy", "difficulty", "fairness"), "worst_group_accuracy")
    gain = run(("accuracy", "difficulty", "fairness"), "worst_group_gain")
    reordered = run(("fairness", "difficulty", "accuracy"), "worst_group_gain")
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    for p, g, r in zip(plain, gain, reordered, strict=True):
        assert g["accuracy"] == p["accuracy"] == r["accuracy"]
        assert g["difficulty"] == p["difficulty"] == r["difficulty"]
        assert g["fairness"] == r["fairness"]
        assert -1.0 <= g["fairness"] <= 1.0


def test_worst_group_gain_is_zero_without_lookahead_steps(
    model: nn.Module, probes: tuple[Probe, Probe]
) -> None:
    ev = Evaluator(objectives=("fairness",), fairness_metric="worst_group_gain", lookahead_steps=0)
    results = ev.evaluate(
        model, F.cross_entropy, OptimizerSpec("sgd", 0.05), *probes, POLICIES, seed=0
    )
    assert [r.objectives["fairness"] for r in results] == [0.0] * len(POLICIES)


def test_worst_group_gain_needs_groups(probes: tuple[Probe, Probe]) -> None:
    train, _ = probes
    with pytest.raises(ConfigError, match=r"needs group ids"):
        Fairness("worst_group_gain").check(train, train)
