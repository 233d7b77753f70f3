"""The vectorized look-ahead (vmap over stacked candidates) scores as the one-by-one path does."""

from __future__ import annotations

import logging
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import evoaug
from evoaug import Policy
from evoaug.evaluate import CandidateResult, Evaluator, OptimizerSpec, Probe, _vectorized
from evoaug.evaluate._call import Call
from evoaug.evaluate._context import Context
from evoaug.evaluate._vectorized import vectorized_lookahead
from evoaug.exceptions import ConfigError

# The two paths agree to float rounding, not bit for bit: continuous objectives to 1e-4, and
# a rounding difference may flip the prediction of an image or two on the validation probe.
TOLERANCE = {"difficulty": 1e-4, "diversity": 1e-4, "accuracy": 2.5 / 128, "fairness": 2.5 / 64}


def _policies() -> list[Policy]:
    names = ["identity", "trivialaugment", "randaugment", "autoaugment-cifar10"]
    harsh = Policy.from_genes([[("Invert", 1.0, 0.0), ("Solarize", 1.0, 1.0)]])
    cutout = Policy.from_genes([[("Cutout", 1.0, 0.5)], [("Rotate", 0.8, 0.5)]])
    return [*(Policy.preset(n) for n in names), harsh, cutout]


def _both(
    model: nn.Module,
    probes: tuple[Probe, Probe],
    optimizer: OptimizerSpec,
    policies: list[Policy],
    loss_fn: object = F.cross_entropy,
    **settings: object,
) -> tuple[list[CandidateResult], list[CandidateResult]]:
    out = []
    for vectorize in (False, True):
        ev = Evaluator(lookahead_steps=4, batch_size=32, vectorize=vectorize, **settings)
        out.append(ev.evaluate(model, loss_fn, optimizer, *probes, policies, seed=3))  # type: ignore[arg-type]
    return out[0], out[1]


def _assert_close(alone: list[CandidateResult], batched: list[CandidateResult]) -> None:
    assert len(alone) == len(batched)
    for a, b in zip(alone, batched, strict=True):
        assert a.failure == b.failure
        for name, value in a.objectives.items():
            other = b.objectives[name]
            close = abs(value - other) <= TOLERANCE[name]
            assert (math.isnan(value) and math.isnan(other)) or close, (name, value, other)


@pytest.mark.parametrize(
    "optimizer",
    [
        OptimizerSpec("sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True),
        OptimizerSpec("adam", lr=1e-3, weight_decay=1e-4),
        OptimizerSpec("adamw", lr=1e-3, weight_decay=0.05),
        OptimizerSpec("rmsprop", lr=1e-3, momentum=0.5),
    ],
    ids=lambda spec: spec.name,
)
def test_vectorized_scores_equal_one_by_one(
    model: nn.Module, probes: tuple[Probe, Probe], optimizer: OptimizerSpec
) -> None:
    alone, batched = _both(model, probes, optimizer, _policies())
    _assert_close(alone, batched)
    # the look-ahead really trained: accuracies differ between policies
    assert len({round(r.objectives["accuracy"], 6) for r in batched}) > 1


def test_vectorized_lookahead_trains_each_candidate_as_alone(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    # Dropout stays on, before a BatchNorm: the recalibration after the steps must draw the
    # same masks whichever path trained, so that the states agree to float rounding.
    assert model[3].p > 0 and isinstance(model[5], nn.BatchNorm2d)
    policies = _policies()
    states = []
    for vectorize in (False, True):
        call = Call(
            model, F.cross_entropy, sgd, *probes, 3, steps=4, batch_size=32, recalibrate=128,
            feature_layer=None, normalize=None,
        )  # fmt: skip
        contexts = [Context(call, p) for p in policies]
        if vectorize:
            assert vectorized_lookahead(call, contexts)
        states.append([
            {k: v.clone() for k, v in ctx.lookahead_model().state_dict().items()}
            for ctx in contexts
        ])  # fmt: skip
    for alone, batched in zip(*states, strict=True):
        for key, value in alone.items():
            torch.testing.assert_close(batched[key], value, rtol=1e-5, atol=1e-5, msg=key)
    # and the candidates differ from one another
    first, second = states[1][0], states[1][1]
    assert not torch.equal(first["0.weight"], second["0.weight"])


def test_vectorized_without_recalibration_keeps_the_lookahead_statistics(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    # BatchNorm running statistics updated inside vmap must be each candidate's own.
    alone, batched = _both(model, probes, sgd, _policies(), recalibrate_bn=False)
    _assert_close(alone, batched)


def test_vectorized_runs_in_groups(
    model: nn.Module,
    probes: tuple[Probe, Probe],
    sgd: OptimizerSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_vectorized, "VECTOR_IMAGES", 64)  # 2 candidates per group at batch 32
    alone, batched = _both(model, probes, sgd, _policies())
    _assert_close(alone, batched)


def test_failing_candidates_fail_alone(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec, nan_op: str, raising_op: str
) -> None:
    policies = [
        Policy.preset("trivialaugment"),
        Policy.from_genes([[(nan_op, 1.0, 0.5)]]),
        Policy.preset("identity"),
        Policy.from_genes([[(raising_op, 1.0, 0.5)]]),
    ]
    alone, batched = _both(model, probes, sgd, policies)
    _assert_close(alone, batched)
    assert [r.ok for r in batched] == [True, False, True, False]
    assert "non-finite" in str(batched[1].failure)
    assert batched[3].failure == f"OpError: op {raising_op!r} raised RuntimeError: kernel exploded"


def test_a_diverging_candidate_does_not_touch_the_others(
    model: nn.Module, probes: tuple[Probe, Probe]
) -> None:
    # A learning rate that overflows only under the harsh policy's inputs would be fragile;
    # instead one candidate's images are scaled huge by a custom op, so its loss goes inf.
    @evoaug.register_op("VectorHuge")
    def huge(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images * 1e38  # finite images, overflowing activations

    try:
        policies = [Policy.preset("identity"), Policy.from_genes([[("VectorHuge", 1.0, 0.5)]])]
        sgd = OptimizerSpec("sgd", lr=0.05)
        alone, batched = _both(model, probes, sgd, policies, normalize=lambda x: x.clamp(max=1e38))
    finally:
        evoaug.ops.unregister_op("VectorHuge")
    _assert_close(alone, batched)
    assert batched[0].ok
    assert batched[1].failure is not None and "non-finite" in batched[1].failure


class _ItemModel(nn.Module):
    """A model vmap cannot run: ``.item()`` on a batched tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 + 0.0 * x.mean().item()
        out: torch.Tensor = self.net(x) * scale
        return out


def test_a_model_vmap_cannot_run_falls_back(
    probes: tuple[Probe, Probe], sgd: OptimizerSpec, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    model = _ItemModel()
    with caplog.at_level(logging.INFO, logger="evoaug.evaluate._vectorized"):
        alone, batched = _both(model, probes, sgd, _policies()[:3])
    _assert_close(alone, batched)
    assert all(r.ok for r in batched)
    assert "vectorized look-ahead unavailable" in caplog.text
    assert "candidates train one by one" in caplog.text


def test_after_a_fallback_the_evaluator_stops_trying(
    probes: tuple[Probe, Probe], sgd: OptimizerSpec, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    model = _ItemModel()
    ev = Evaluator(lookahead_steps=2, batch_size=32, vectorize=True)
    with caplog.at_level(logging.WARNING, logger="evoaug.evaluate._vectorized"):
        for seed in range(3):
            results = ev.evaluate(model, F.cross_entropy, sgd, *probes, _policies()[:2], seed=seed)
            assert all(r.ok for r in results)
    assert caplog.text.count("vectorized look-ahead unavailable") == 1


def test_a_per_sample_loss_fails_every_candidate_as_before(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    def per_sample(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, labels, reduction="none")

    ev = Evaluator(objectives=("accuracy",), lookahead_steps=2, batch_size=32, vectorize=True)
    results = ev.evaluate(model, per_sample, sgd, *probes, _policies()[:2], seed=0)
    expected = "ConfigError: `loss_fn` must return a scalar (mean) loss tensor, got shape (32,)"
    assert [r.failure for r in results] == [expected, expected]
    alone, batched = _both(model, probes, sgd, _policies()[:2], loss_fn=per_sample)
    # difficulty, which needs no look-ahead, runs first and meets the loss first
    expected = "ConfigError: `loss_fn` must return a scalar (mean) loss tensor, got shape (128,)"
    assert [r.failure for r in batched] == [expected, expected]
    _assert_close(alone, batched)


def test_vectorized_evaluation_is_isolated(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    np.random.seed(5)  # noqa: NPY002
    random.seed(5)
    torch.manual_seed(5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    Evaluator(lookahead_steps=3, batch_size=32, vectorize=True).evaluate(
        model, F.cross_entropy, sgd, *probes, _policies(), seed=0
    )
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(rng, torch.get_rng_state())
    assert model.training


def test_vectorize_setting_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"`vectorize` must be True, False or 'auto', got 'yes'"):
        Evaluator(vectorize="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("vectorize", "device", "objectives", "expected"),
    [
        ("auto", "cpu", ("accuracy",), False),
        ("auto", "cuda", ("accuracy",), True),
        (True, "cpu", ("accuracy",), True),
        (False, "cuda", ("accuracy",), False),
        (True, "cuda", ("difficulty", "diversity"), False),  # nothing needs the look-ahead
    ],
)
def test_when_the_lookahead_is_vectorized(
    vectorize: bool | str, device: str, objectives: tuple[str, ...], expected: bool
) -> None:
    ev = Evaluator(objectives=objectives, vectorize=vectorize)  # type: ignore[arg-type]
    call = SimpleNamespace(device=torch.device(device))
    assert ev._vectorizes(call) is expected  # type: ignore[arg-type]
    assert f"vectorize={vectorize!r}" in repr(ev)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_vectorized_on_cuda_equals_one_by_one(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    model[3].p = 0.0
    alone, batched = _both(model.to("cuda"), probes, sgd, _policies())  # probes follow the model
    _assert_close(alone, batched)
