"""Objectives that score all candidates of a generation at once (``scores_together``)."""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest
import torch.nn.functional as F
from torch import nn

from evoaug import Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe
from evoaug.objectives import (
    CandidateContext,
    CandidateFailure,
    Fairness,
    Objective,
    register_objective,
    unregister_objective,
)

POLICIES = [
    Policy.preset("identity"),
    Policy.preset("trivialaugment"),
    Policy.preset("autoaugment-cifar10"),
]


class Together(Objective):
    """Records what the evaluator hands it; each candidate scores its policy's gene count."""

    scores_together = True
    uses_lookahead = False
    prepared: ClassVar[list[str]] = []
    batches: ClassVar[list[list[str]]] = []
    values: ClassVar[dict[str, float]] = {}
    fail_prepare: ClassVar[set[str]] = set()
    raise_in_batch: ClassVar[bool] = False

    def prepare(self, ctx: CandidateContext) -> str:
        name = str(ctx.policy.to_dict()["sub_policies"][0][0]["op"])
        if name in self.fail_prepare:
            raise CandidateFailure(f"prepare refused {name}")
        self.prepared.append(name)
        return name.upper()  # handed back in `prepared`

    def _compute(self, ctx: CandidateContext) -> float:
        raise AssertionError("a together objective is scored through score_many")

    def _compute_many(
        self, contexts: Sequence[CandidateContext], prepared: Sequence[Any]
    ) -> list[float]:
        names = [ctx.policy.to_dict()["sub_policies"][0][0]["op"] for ctx in contexts]
        assert list(prepared) == [name.upper() for name in names]
        self.batches.append(names)
        if self.raise_in_batch:
            raise ValueError("the batch went wrong")
        return [self.values.get(name, float(len(name))) for name in names]


@pytest.fixture
def together() -> Iterator[type[Together]]:
    register_objective("together")(Together)
    Together.prepared, Together.batches, Together.values = [], [], {}
    Together.fail_prepare, Together.raise_in_batch = set(), False
    yield Together
    unregister_objective("together")


def _evaluate(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec, policies: list[Policy]
) -> list[tuple[dict[str, float], str | None]]:
    ev = Evaluator(objectives=("together", "difficulty"), lookahead_steps=2, batch_size=32)
    results = ev.evaluate(model, F.cross_entropy, sgd, *probes, policies, seed=0)
    return [(r.objectives, r.failure) for r in results]


def test_one_call_scores_every_candidate_in_order(
    together: type[Together], model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    policies = [Policy.from_dict(_single(op)) for op in ("Rotate", "Invert", "Equalize")]
    results = _evaluate(model, probes, sgd, policies)
    assert together.prepared == ["Rotate", "Invert", "Equalize"]
    assert together.batches == [["Rotate", "Invert", "Equalize"]]
    assert [r[0]["together"] for r in results] == [6.0, 6.0, 8.0]
    assert [list(r[0]) for r in results] == [["together", "difficulty"]] * 3
    assert all(r[1] is None for r in results)


def test_failures_stay_with_their_candidate(
    together: type[Together],
    model: nn.Module,
    probes: tuple[Probe, Probe],
    sgd: OptimizerSpec,
    caplog: pytest.LogCaptureFixture,
) -> None:
    together.fail_prepare = {"Invert"}
    together.values = {"Equalize": float("inf")}
    policies = [Policy.from_dict(_single(op)) for op in ("Rotate", "Invert", "Equalize")]
    results = _evaluate(model, probes, sgd, policies)
    assert together.batches == [["Rotate", "Equalize"]]  # the failed candidate is left out
    assert results[0] == ({"together": 6.0, "difficulty": results[0][0]["difficulty"]}, None)
    assert results[1][1] == "prepare refused Invert"
    assert results[2][1] == "objective 'together' is non-finite (inf)"
    for objectives, _ in results[1:]:
        assert all(np.isnan(v) for v in objectives.values())
    assert "candidate 1 failed: prepare refused Invert" in caplog.text
    assert "candidate 2 failed: objective 'together' is non-finite (inf)" in caplog.text


def test_a_raising_batch_fails_every_candidate_it_scored(
    together: type[Together], model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    together.raise_in_batch = True
    results = _evaluate(model, probes, sgd, POLICIES)
    assert [failure for _, failure in results] == ["ValueError: the batch went wrong"] * 3


def test_score_many_checks_the_number_of_values() -> None:
    class Short(Objective):
        def _compute(self, ctx: CandidateContext) -> float:
            return 0.0

        def _compute_many(
            self, contexts: Sequence[CandidateContext], prepared: Sequence[Any]
        ) -> list[float]:
            return [0.0]

    contexts: Any = [None, None]
    with pytest.raises(RuntimeError, match=r"returned 1 values for 2 candidates"):
        Short().score_many(contexts)
    with pytest.raises(RuntimeError, match=r"1 prepared values for 2 candidates"):
        Short().score_many(contexts, [None])


def test_default_score_many_scores_one_by_one() -> None:
    class Length(Objective):
        def _compute(self, ctx: CandidateContext) -> float:
            return float(len(ctx.policy.sub_policies))

    contexts: Any = [types.SimpleNamespace(policy=policy) for policy in (POLICIES[0], POLICIES[2])]
    assert Length().score_many(contexts) == [1.0, 25.0]


def test_fairness_scores_together_and_equals_one_by_one(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    """One MetricFrame over all candidates gives each candidate's own worst-group accuracy."""
    assert Fairness().scores_together and not Fairness(estimator="alignment").scores_together
    ev = Evaluator(objectives=("fairness",), lookahead_steps=3, batch_size=32)
    together = ev.evaluate(model, F.cross_entropy, sgd, *probes, POLICIES, seed=4)
    alone = [
        ev.evaluate(model, F.cross_entropy, sgd, *probes, [policy], seed=4)[0]
        for policy in POLICIES
    ]
    assert [r.objectives for r in together] == [r.objectives for r in alone]
    assert len({r.objectives["fairness"] for r in together}) > 1


def _single(op: str) -> dict[str, object]:
    return {"format_version": 1, "sub_policies": [[{"op": op, "probability": 1.0, "level": 0.5}]]}


class LookaheadAccuracy(Objective):
    """Accuracy read from ``ctx.lookahead_model()``, scored together after every candidate."""

    scores_together = True

    def _compute(self, ctx: CandidateContext) -> float:
        import torch

        model = ctx.lookahead_model()
        with torch.no_grad():
            predicted = model(ctx.val_probe.images).argmax(1)
        return float((predicted == ctx.val_probe.labels).float().mean())


def test_a_together_objective_reads_each_candidates_own_lookahead(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    """By the time score_many runs the scratch holds the last candidate's θ': every candidate
    must still see its own, with or without another look-ahead objective scored first."""
    register_objective("lookahead_accuracy")(LookaheadAccuracy)
    try:
        policies = [*POLICIES, Policy.from_genes([[("Invert", 1.0, 0.0)]])]
        values = {}
        for objectives in (("lookahead_accuracy",), ("accuracy", "lookahead_accuracy")):
            ev = Evaluator(objectives=objectives, lookahead_steps=4, batch_size=32)
            results = ev.evaluate(model, F.cross_entropy, sgd, *probes, policies, seed=0)
            values[objectives] = [r.objectives for r in results]
    finally:
        unregister_objective("lookahead_accuracy")
    alone = [v["lookahead_accuracy"] for v in values[("lookahead_accuracy",)]]
    both = values[("accuracy", "lookahead_accuracy")]
    assert [v["lookahead_accuracy"] for v in both] == alone
    assert [v["accuracy"] for v in both] == alone  # the built-in reads the same θ'
    assert len(set(alone)) > 1  # the candidates' look-aheads really differ
