"""Bad settings and bad inputs fail before any work, with messages that say what to do."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evoaug import ConfigError, InputError, Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe

IDENTITY = [Policy.preset("identity")]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objectives": ("accuracy", "speed")}, r"unknown objective 'speed'.*Available"),
        ({"objectives": "accuracy"}, r"`objectives` must be a non-empty sequence"),
        ({"objectives": ()}, r"`objectives` must be a non-empty sequence"),
        ({"objectives": ("accuracy", "accuracy")}, r"must not repeat names"),
        ({"objectives": ("accuracy", 3)}, r"must hold names"),
        ({"lookahead_steps": -1}, r"`lookahead_steps` must be an int >= 0, got -1"),
        ({"lookahead_steps": 2.5}, r"`lookahead_steps` must be an int >= 0, got 2.5"),
        ({"batch_size": 0}, r"`batch_size` must be an int >= 1"),
        ({"recalibrate_bn": "yes"}, r"`recalibrate_bn` must be a bool, got 'yes'"),
        ({"recalibration_size": 0}, r"`recalibration_size` must be an int >= 1"),
        ({"feature_layer": ""}, r"`feature_layer` must be None or a module name"),
        ({"fairness_metric": "gini"}, r"`fairness_metric` must be one of \(.*\), got 'gini'"),
        ({"normalize": 3}, r"`normalize` must be None or a callable, got 3"),
        ({"difficulty_size": 0}, r"`difficulty_size` must be an int >= 1"),
        ({"diversity_size": 1}, r"`diversity_size` must be an int >= 2, got 1"),
    ],
)
def test_bad_settings(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Evaluator(**kwargs)


class _Recorder(nn.Module):
    """Counts forward calls, to prove that validation happens before any work."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out: torch.Tensor = self.net(x)
        return out


def _probes(n: int = 64, groups: bool = True, classes: int = 10) -> tuple[Probe, Probe]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = torch.arange(n) % classes
    return Probe(x, y), Probe(x, y, y % 2 if groups else None)


def _call(
    ev: Evaluator | None = None,
    model: Any = None,
    loss_fn: Any = F.cross_entropy,
    optimizer: Any = None,
    probes: tuple[Any, Any] | None = None,
    policies: Any = IDENTITY,
    seed: Any = 0,
) -> _Recorder:
    recorder = model if model is not None else _Recorder()
    ev = ev or Evaluator(lookahead_steps=2, batch_size=32)
    optimizer = optimizer or OptimizerSpec("sgd", 0.1)
    train, val = probes or _probes()
    try:
        ev.evaluate(recorder, loss_fn, optimizer, train, val, policies, seed=seed)
    finally:
        if isinstance(recorder, _Recorder):
            assert recorder.calls == 0, "the model ran before the arguments were checked"
    return recorder


def test_fairness_without_groups_says_how_to_provide_them() -> None:
    with pytest.raises(ConfigError, match=r"groups=.*pass the class labels as groups"):
        _call(probes=_probes(groups=False))


def test_binary_fairness_metric_rejects_multiclass_labels() -> None:
    ev = Evaluator(fairness_metric="equalized_odds_difference", batch_size=32)
    with pytest.raises(ConfigError, match=r"binary labels in \{0, 1\} only.*got labels \[0, 1, 2"):
        _call(ev)


def test_probe_smaller_than_batch() -> None:
    with pytest.raises(ConfigError, match=r"`train_probe` must hold at least `batch_size` = 32"):
        _call(probes=_probes(n=16))
    train, _ = _probes()
    _, small_val = _probes(n=16)
    with pytest.raises(ConfigError, match=r"`val_probe` must hold at least `batch_size` = 32"):
        _call(probes=(train, small_val))


def test_unknown_feature_layer_lists_modules() -> None:
    ev = Evaluator(feature_layer="head", batch_size=32)
    with pytest.raises(ConfigError, match=r"`feature_layer` must name a module.*'net.1'"):
        _call(ev)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"model": "resnet"}, ConfigError, r"`model` must be a torch.nn.Module, got str"),
        ({"loss_fn": "ce"}, ConfigError, r"`loss_fn` must be callable"),
        ({"optimizer": "sgd"}, ConfigError, r"OptimizerSpec.from_optimizer"),
        ({"probes": (torch.rand(64, 1, 8, 8), None)}, InputError, r"`train_probe` must be"),
        ({"policies": Policy.preset("identity")}, ConfigError, r"`policies` must be a sequence"),
        ({"policies": ["identity"]}, ConfigError, r"`policies\[0\]` must be a Policy, got str"),
        ({"seed": -1}, ConfigError, r"`seed` must be an int >= 0, got -1"),
        ({"seed": True}, ConfigError, r"`seed` must be an int >= 0, got True"),
    ],
)
def test_bad_call_arguments(overrides: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _call(**overrides)


def test_no_trainable_parameters() -> None:
    model = _Recorder().requires_grad_(False)
    with pytest.raises(ConfigError, match=r"needs trainable parameters"):
        _call(model=model)
    # without look-ahead objectives a frozen model is fine
    ev = Evaluator(objectives=("difficulty",), batch_size=32)
    train, val = _probes()
    (result,) = ev.evaluate(
        model, F.cross_entropy, OptimizerSpec("sgd", 0.1), train, val, IDENTITY, seed=0
    )
    assert result.objectives == {"difficulty": 0.0}


@pytest.mark.parametrize(
    ("images", "labels", "groups", "match"),
    [
        (torch.rand(8, 8, 8), torch.zeros(8), None, r"`images` must be 4-D"),
        (torch.rand(8, 1, 8, 8) * 2, torch.zeros(8), None, r"must be in \[0, 1\].*`normalize=`"),
        (torch.full((8, 1, 8, 8), float("nan")), torch.zeros(8), None, r"must be in \[0, 1\]"),
        (
            torch.zeros(8, 1, 8, 8, dtype=torch.int32),
            torch.zeros(8),
            None,
            r"float in \[0, 1\] or uint8",
        ),
        ([[0.0]], torch.zeros(8), None, r"`images` must be a torch.Tensor"),
        (torch.rand(8, 1, 8, 8), torch.zeros(8), None, r"`labels` must hold integers"),
        (
            torch.rand(8, 1, 8, 8),
            torch.zeros(7, dtype=torch.long),
            None,
            r"`labels` must have shape \[N\] with N=8",
        ),
        (
            torch.rand(8, 1, 8, 8),
            torch.zeros(8, dtype=torch.long),
            torch.zeros(9, dtype=torch.long),
            r"`groups` must have shape \[N\] with N=8 \(one per image\), got \(9,\)",
        ),
    ],
)
def test_bad_probe_tensors(images: Any, labels: Any, groups: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Probe(images, labels, groups)


def test_probe_accepts_uint8_and_int32() -> None:
    probe = Probe(
        torch.full((4, 1, 2, 2), 255, dtype=torch.uint8), torch.zeros(4, dtype=torch.int32)
    )
    assert probe.images.dtype == torch.float32 and float(probe.images.max()) == 1.0
    assert probe.labels.dtype == torch.int64
