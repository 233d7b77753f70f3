"""After evaluate(), the live model and every RNG stream are bit-identical to before."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evoaug import Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "modes": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "optimizer": {
            k: {n: t.clone() for n, t in v.items()}
            for k, v in optimizer.state_dict()["state"].items()
        },
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 (the global state is under test)
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        snap["cuda"] = torch.cuda.get_rng_state_all()
    return snap


def _assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before["state"].keys() == after["state"].keys()
    for key, value in before["state"].items():
        assert torch.equal(value, after["state"][key]), key
    assert before["modes"] == after["modes"]
    assert before["requires_grad"] == after["requires_grad"]
    for g0, g1 in zip(before["grads"], after["grads"], strict=True):
        assert (g0 is None and g1 is None) or torch.equal(g0, g1)
    for k, v in before["optimizer"].items():
        for n, t in v.items():
            assert torch.equal(t, after["optimizer"][k][n])
    assert torch.equal(before["torch"], after["torch"])
    b, a = before["numpy"], after["numpy"]
    assert b[0] == a[0] and np.array_equal(b[1], a[1]) and b[2:] == a[2:]
    assert before["python"] == after["python"]
    if "cuda" in before:
        assert all(torch.equal(x, y) for x, y in zip(before["cuda"], after["cuda"], strict=True))


def _prepare_live(model: nn.Module, probes: tuple[Probe, Probe]) -> torch.optim.Optimizer:
    """Give the live model grads, optimizer state, a frozen layer and mixed modes."""
    train, _ = probes
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss = F.cross_entropy(model(train.images[:32]), train.labels[:32])
    loss.backward()
    optimizer.step()
    loss = F.cross_entropy(model(train.images[32:64]), train.labels[32:64])
    optimizer.zero_grad()
    loss.backward()  # leave grads in place
    model[0].weight.requires_grad_(False)
    model[3].eval()  # the dropout layer, as a user might freeze one part
    return optimizer


def _policies(extra: list[Policy]) -> list[Policy]:
    names = ["identity", "trivialaugment", "randaugment", "autoaugment-cifar10"]
    presets = [Policy.preset(n) for n in names]
    harsh = Policy.from_genes([[("Invert", 1.0, 0.0), ("Solarize", 1.0, 1.0)]])
    rotate = Policy.from_genes([[("Rotate", 0.8, 0.5)], [("ShearX", 0.5, 0.3)]])
    return [*presets, harsh, rotate, *extra]


@pytest.mark.parametrize("with_failure", [False, True], ids=["all-ok", "one-fails"])
def test_evaluate_leaves_model_and_rng_bit_identical(
    model: nn.Module,
    probes: tuple[Probe, Probe],
    sgd: OptimizerSpec,
    nan_op: str,
    with_failure: bool,
) -> None:
    optimizer = _prepare_live(model, probes)
    extra = Policy.from_genes([[(nan_op, 1.0, 0.5)]]) if with_failure else Policy.preset("identity")
    policies = _policies([Policy.from_genes([[("Cutout", 1.0, 0.5)]]), extra])
    assert len(policies) == 8
    np.random.seed(5)  # noqa: NPY002
    random.seed(5)
    torch.manual_seed(5)
    before = _snapshot(model, optimizer)
    ev = Evaluator(lookahead_steps=4, batch_size=32)
    results = ev.evaluate(model, F.cross_entropy, sgd, *probes, policies, seed=3)
    _assert_same(before, _snapshot(model, optimizer))
    assert [r.ok for r in results] == [True] * 7 + [not with_failure]
    # the streams continue exactly where they were
    assert torch.rand(1).item() == (torch.manual_seed(5), torch.rand(1).item())[1]


def test_isolation_holds_for_a_model_in_eval_mode(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    model.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = _snapshot(model, optimizer)
    Evaluator(lookahead_steps=3, batch_size=32).evaluate(
        model, F.cross_entropy, sgd, *probes, [Policy.preset("trivialaugment")], seed=0
    )
    _assert_same(before, _snapshot(model, optimizer))
    assert not any(m.training for m in model.modules())
