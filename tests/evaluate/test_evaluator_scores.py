"""What the objectives measure: determinism, identity baselines, harsh policies, failures."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import evoaug
from evoaug import Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe

IDENTITY = Policy.preset("identity")
HARSH = Policy.from_genes([[("Invert", 1.0, 0.0)], [("Solarize", 1.0, 1.0)]])
RANDOM = Policy.preset("trivialaugment")


def _evaluate(
    model: nn.Module,
    probes: tuple[Probe, Probe],
    sgd: OptimizerSpec,
    policies: list[Policy],
    seed: int = 0,
    **kwargs: object,
) -> list[evoaug.evaluate.CandidateResult]:
    settings: dict[str, object] = {"lookahead_steps": 5, "batch_size": 32, **kwargs}
    ev = Evaluator(**settings)  # type: ignore[arg-type]
    return ev.evaluate(model, F.cross_entropy, sgd, *probes, policies, seed=seed)


def test_same_seed_same_values_and_other_seed_other_accuracy(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    policies = [IDENTITY, RANDOM, HARSH]
    first = _evaluate(model, probes, sgd, policies, seed=7)
    again = _evaluate(model, probes, sgd, policies, seed=7)
    other = _evaluate(model, probes, sgd, policies, seed=8)
    assert [r.objectives for r in first] == [r.objectives for r in again]
    assert [r.objectives["accuracy"] for r in first] != [r.objectives["accuracy"] for r in other]


def test_common_random_numbers_give_equal_policies_equal_scores(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    copy = Policy.from_dict(RANDOM.to_dict())
    a, b, c = _evaluate(model, probes, sgd, [RANDOM, IDENTITY, copy])
    assert a.objectives == c.objectives
    assert a.objectives != b.objectives


def test_identity_scores_zero_difficulty_and_diversity(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    identity, harsh, random_policy = _evaluate(model, probes, sgd, [IDENTITY, HARSH, RANDOM])
    assert abs(identity.objectives["difficulty"]) < 1e-6
    assert abs(identity.objectives["diversity"]) < 1e-6
    assert harsh.objectives["difficulty"] > identity.objectives["difficulty"] + 0.5
    assert random_policy.objectives["diversity"] > 0.05
    # a deterministic harsh policy draws the same image twice: no diversity
    assert abs(harsh.objectives["diversity"]) < 1e-6


def test_pixel_space_fallback_and_named_feature_layer(
    probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    no_linear = nn.Sequential(nn.Conv2d(1, 10, 8), nn.Flatten())
    pixel = _evaluate(no_linear, probes, sgd, [IDENTITY, RANDOM], objectives=("diversity",))
    assert pixel[0].objectives["diversity"] == 0.0 and pixel[1].objectives["diversity"] > 0
    named = _evaluate(
        no_linear, probes, sgd, [RANDOM], objectives=("diversity",), feature_layer="1"
    )
    assert named[0].objectives["diversity"] > 0
    assert named[0].objectives["diversity"] != pixel[1].objectives["diversity"]


def test_nan_candidate_fails_and_others_are_scored(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec, nan_op: str
) -> None:
    bad = Policy.from_genes([[(nan_op, 1.0, 0.5)]])
    alone = _evaluate(model, probes, sgd, [IDENTITY, RANDOM])
    mixed = _evaluate(model, probes, sgd, [IDENTITY, bad, RANDOM])
    assert mixed[1].failure is not None
    assert "non-finite images" in mixed[1].failure
    assert all(math.isnan(v) for v in mixed[1].objectives.values())
    assert list(mixed[1].objectives) == ["accuracy", "difficulty", "diversity", "fairness"]
    # the other candidates are untouched by the failure (same seed, same values)
    assert [mixed[0].objectives, mixed[2].objectives] == [r.objectives for r in alone]


def test_nan_loss_is_reported_with_its_step(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    calls = {"n": 0}

    def loss_fn(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = F.cross_entropy(outputs, labels)
        return loss * float("nan") if outputs.requires_grad and calls["n"] % 5 == 3 else loss

    ev = Evaluator(objectives=("accuracy",), lookahead_steps=5, batch_size=32)
    (result,) = ev.evaluate(model, loss_fn, sgd, *probes, [IDENTITY], seed=0)
    assert result.failure == "non-finite loss at look-ahead step 3 of 5"


def test_raising_candidate_fails_with_its_exception(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec, raising_op: str
) -> None:
    bad = Policy.from_genes([[(raising_op, 1.0, 0.5)]])
    ok, failed = _evaluate(model, probes, sgd, [IDENTITY, bad])
    assert ok.ok and not failed.ok
    assert failed.failure is not None
    assert failed.failure.startswith(f"OpError: op {raising_op!r} raised RuntimeError")
    assert failed.seconds >= 0


def test_objectives_subset_and_order(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    (result,) = _evaluate(model, probes, sgd, [RANDOM], objectives=("fairness", "difficulty"))
    assert list(result.objectives) == ["fairness", "difficulty"]
    assert 0.0 <= result.objectives["fairness"] <= 1.0


def test_empty_population(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    assert _evaluate(model, probes, sgd, []) == []


@pytest.mark.parametrize(("objective", "n"), [("accuracy", 32), ("difficulty", 128)])
def test_per_sample_loss_is_reported_clearly(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec, objective: str, n: int
) -> None:
    def per_sample(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, labels, reduction="none")

    ev = Evaluator(objectives=(objective,), lookahead_steps=2, batch_size=32)
    (result,) = ev.evaluate(model, per_sample, sgd, *probes, [IDENTITY], seed=0)
    assert result.failure == (
        f"ConfigError: `loss_fn` must return a scalar (mean) loss tensor, got shape ({n},)"
    )


def test_a_caller_under_no_grad_gets_the_same_scores(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    """The look-ahead trains: scoring inside torch.no_grad() must not fail every candidate."""
    policies = [IDENTITY, RANDOM]
    plain = _evaluate(model, probes, sgd, policies)
    with torch.no_grad():
        quiet = _evaluate(model, probes, sgd, policies)
    assert all(r.ok for r in quiet)
    assert [r.objectives for r in quiet] == [r.objectives for r in plain]
    with torch.no_grad():
        _evaluate(model, probes, sgd, [IDENTITY])
        assert not torch.is_grad_enabled()  # the caller's mode is its own again afterwards
