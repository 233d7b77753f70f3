"""lookahead_steps=0: the objectives of the model as it is (the offline search's trained models)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evoaug import Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe


def test_zero_steps_scores_the_model_itself_and_leaves_it_untouched(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    train, val = probes
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluator = Evaluator(lookahead_steps=0, batch_size=1, recalibrate_bn=False)
    [result] = evaluator.evaluate(
        model, F.cross_entropy, sgd, train, val, [Policy.preset("trivialaugment")], seed=0
    )
    assert result.ok
    model.eval()
    with torch.no_grad():
        predicted = model(val.images).argmax(1)
    assert result.objectives["accuracy"] == float((predicted == val.labels).float().mean())
    per_group = [
        float((predicted[val.groups == g] == val.labels[val.groups == g]).float().mean())
        for g in (0, 1)
    ]
    assert result.objectives["fairness"] == min(per_group)
    assert result.objectives["difficulty"] != 0.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_zero_steps_works_on_a_frozen_model(probes: tuple[Probe, Probe]) -> None:
    train, val = probes
    frozen = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).requires_grad_(False)
    [result] = Evaluator(lookahead_steps=0, batch_size=1).evaluate(
        frozen,
        F.cross_entropy,
        OptimizerSpec("sgd", lr=0.1),
        train,
        val,
        [Policy.preset("identity")],
        seed=0,
    )
    assert result.ok and result.objectives["difficulty"] == 0.0
