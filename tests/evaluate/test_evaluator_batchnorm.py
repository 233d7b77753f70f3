"""BatchNorm recalibration after the look-ahead, and the models the context hands out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evoaug import Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe
from evoaug.objectives import CandidateContext, register_objective, unregister_objective

SEEN: dict[str, Any] = {}


@pytest.fixture
def bn_spy() -> Iterator[str]:
    @register_objective("bn_spy")
    def spy(ctx: CandidateContext) -> float:
        lookahead = ctx.lookahead_model()
        SEEN["lookahead"] = {k: v.clone() for k, v in lookahead.state_dict().items()}
        SEEN["lookahead_training"] = lookahead.training
        clean = ctx.clean_model()
        SEEN["clean"] = {k: v.clone() for k, v in clean.state_dict().items()}
        SEEN["again"] = {k: v.clone() for k, v in ctx.lookahead_model().state_dict().items()}
        return 0.0

    yield "bn_spy"
    unregister_objective("bn_spy")
    SEEN.clear()


def _bn_first() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.BatchNorm2d(1),
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    ).train()


def _normalize(images: torch.Tensor) -> torch.Tensor:
    return (images - 0.3) / 0.4


def test_running_stats_are_the_clean_probe_statistics(
    digits: tuple[torch.Tensor, torch.Tensor], bn_spy: str
) -> None:
    images, labels = digits
    train = Probe(images[:96], labels[:96])  # one recalibration chunk
    val = Probe(images[500:596], labels[500:596])
    model = _bn_first()
    live = {k: v.clone() for k, v in model.state_dict().items()}
    harsh = Policy.from_genes([[("Invert", 1.0, 0.0)]])
    ev = Evaluator(objectives=(bn_spy,), lookahead_steps=6, batch_size=32, normalize=_normalize)
    (result,) = ev.evaluate(
        model, F.cross_entropy, OptimizerSpec("sgd", 0.1), train, val, [harsh], seed=0
    )
    assert result.ok, result.failure
    state = SEEN["lookahead"]
    clean_inputs = _normalize(train.images)
    assert torch.allclose(state["0.running_mean"], clean_inputs.mean(dim=(0, 2, 3)), atol=1e-6)
    expected_var = clean_inputs.transpose(0, 1).flatten(1).var(dim=1, unbiased=True)
    assert torch.allclose(state["0.running_var"], expected_var, atol=1e-6)
    assert int(state["0.num_batches_tracked"]) == 1
    assert not SEEN["lookahead_training"]
    # the weights did move, and clean_model() is θ again; lookahead_model() comes back as θ'
    assert not torch.equal(state["1.weight"], live["1.weight"])
    for key, value in live.items():
        assert torch.equal(SEEN["clean"][key], value), key
    for key, value in state.items():
        assert torch.equal(SEEN["again"][key], value), key


def test_without_recalibration_stats_keep_the_augmented_momentum_average(
    digits: tuple[torch.Tensor, torch.Tensor], bn_spy: str
) -> None:
    images, labels = digits
    train = Probe(images[:96], labels[:96])
    harsh = Policy.from_genes([[("Invert", 1.0, 0.0)]])
    ev = Evaluator(objectives=(bn_spy,), lookahead_steps=6, batch_size=32, recalibrate_bn=False)
    ev.evaluate(
        _bn_first(), F.cross_entropy, OptimizerSpec("sgd", 0.1), train, train, [harsh], seed=0
    )
    state = SEEN["lookahead"]
    assert int(state["0.num_batches_tracked"]) == 6
    clean_mean = train.images.mean(dim=(0, 2, 3))
    assert not torch.allclose(state["0.running_mean"], clean_mean, atol=1e-3)


def test_frozen_batchnorm_keeps_its_statistics(
    digits: tuple[torch.Tensor, torch.Tensor], bn_spy: str
) -> None:
    images, labels = digits
    train = Probe(images[:96], labels[:96])
    model = _bn_first()
    model[0].eval()  # frozen input normalization, as in fine-tuning
    before = model[0].running_mean.clone()
    ev = Evaluator(objectives=(bn_spy,), lookahead_steps=3, batch_size=32)
    ev.evaluate(
        model,
        F.cross_entropy,
        OptimizerSpec("sgd", 0.1),
        train,
        train,
        [Policy.preset("identity")],
        seed=0,
    )
    assert torch.equal(SEEN["lookahead"]["0.running_mean"], before)
    assert int(SEEN["lookahead"]["2.num_batches_tracked"]) == 1
