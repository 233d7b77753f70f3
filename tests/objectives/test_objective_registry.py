"""The objective registry, and custom objectives evaluated through the same context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evoaug import ConfigError, Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe
from evoaug.objectives import (
    CandidateContext,
    CandidateFailure,
    Objective,
    available_objectives,
    get_objective,
    register_objective,
    unregister_objective,
)


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        if name in available_objectives():
            unregister_objective(name)


def test_builtins_are_registered() -> None:
    assert {"accuracy", "difficulty", "diversity", "fairness"} <= set(available_objectives())
    assert available_objectives() == sorted(available_objectives())
    assert get_objective("difficulty", size=32).size == 32  # type: ignore[attr-defined]
    assert get_objective("accuracy") is not get_objective("accuracy")


def test_unknown_and_duplicate_names(cleanup: list[str]) -> None:
    register_objective("plain")(lambda ctx: 0.0)
    cleanup.append("plain")
    with pytest.raises(
        ConfigError, match=r"unknown objective 'acuracy'\. Did you mean 'accuracy'\?"
    ):
        get_objective("acuracy")
    with pytest.raises(ConfigError, match=r"'accuracy' is already registered.*`replace=True`"):
        register_objective("accuracy")(lambda ctx: 0.0)
    with pytest.raises(ConfigError, match=r"`name` must be a non-empty string"):
        register_objective("")
    with pytest.raises(ConfigError, match=r"expected an Objective subclass or a function"):
        register_objective("not_callable")(42)
    with pytest.raises(ConfigError, match=r"objective 'plain' does not accept options"):
        get_objective("plain", size=3)
    with pytest.raises(ConfigError, match=r"objective 'accuracy' does not accept options"):
        get_objective("accuracy", sizes=3)
    with pytest.raises(ConfigError, match=r"unknown objective 'nothing'"):
        unregister_objective("nothing")


def test_custom_objectives_receive_the_context(
    cleanup: list[str],
    model: nn.Module,
    probes: tuple[Probe, Probe],
    sgd: OptimizerSpec,
) -> None:
    seen: dict[str, Any] = {}

    @register_objective("darkness")
    def darkness(ctx: CandidateContext) -> float:
        sub = ctx.train_subset(64)
        seen["policy"], seen["seed"] = ctx.policy, ctx.seed
        seen["probes"] = (ctx.train_probe, ctx.val_probe)
        seen["features"] = ctx.features(ctx.clean_model(), sub.images).shape
        return -float(ctx.augment(sub.images, ctx.generator("darkness")).mean())

    @register_objective("val_agreement")
    class Agreement(Objective):
        def _compute(self, ctx: CandidateContext) -> float:
            y_true, y_pred, groups = ctx.lookahead_predictions()
            seen["groups"] = groups
            return float(np.mean(y_true == y_pred))

    cleanup.extend(["darkness", "val_agreement"])
    assert Agreement.name == "val_agreement"
    invert = Policy.from_genes([[("Invert", 1.0, 0.0)]])
    ev = Evaluator(
        objectives=("darkness", "val_agreement", "accuracy"), lookahead_steps=3, batch_size=32
    )
    plain, inverted = ev.evaluate(
        model, F.cross_entropy, sgd, *probes, [Policy.preset("identity"), invert], seed=4
    )
    assert list(plain.objectives) == ["darkness", "val_agreement", "accuracy"]
    assert plain.objectives["val_agreement"] == plain.objectives["accuracy"]
    # inverted digits are bright
    assert inverted.objectives["darkness"] < plain.objectives["darkness"]
    assert seen["policy"] is invert and seen["seed"] == 4
    assert torch.equal(seen["probes"][0].images, probes[0].images)  # on the model's device
    assert torch.equal(seen["probes"][1].labels, probes[1].labels)
    assert seen["features"] == (64, 64)  # the input of the last Linear(64, 10)
    assert np.array_equal(seen["groups"], probes[1].groups.numpy())  # type: ignore[union-attr]


def test_non_finite_and_non_numeric_custom_values_fail_the_candidate(
    cleanup: list[str], model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    register_objective("nan_value")(lambda ctx: float("nan"))
    register_objective("text_value")(lambda ctx: "high")

    @register_objective("gives_up")
    def gives_up(ctx: CandidateContext) -> float:
        raise CandidateFailure("no signal for this policy")

    cleanup.extend(["nan_value", "text_value", "gives_up"])
    identity = [Policy.preset("identity")]
    reasons = []
    for name in ("nan_value", "text_value", "gives_up"):
        ev = Evaluator(objectives=("difficulty", name), lookahead_steps=2, batch_size=32)
        (result,) = ev.evaluate(model, F.cross_entropy, sgd, *probes, identity, seed=0)
        assert np.isnan(result.objectives["difficulty"])
        reasons.append(result.failure)
    assert reasons == [
        "objective 'nan_value' is non-finite (nan)",
        "objective 'text_value' must return a number, got str",
        "no signal for this policy",
    ]


def test_objective_tensor_results_are_converted(cleanup: list[str]) -> None:
    class Half(Objective):
        def _compute(self, ctx: CandidateContext) -> torch.Tensor:
            return torch.tensor(0.5)

    register_objective("half")(Half)
    cleanup.append("half")
    assert get_objective("half")(None) == 0.5  # type: ignore[arg-type]
