"""OptimizerSpec: reading the live optimizer's type and current hyper-parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evoaug import ConfigError
from evoaug.evaluate import OptimizerSpec


def _params() -> list[nn.Parameter]:
    return list(nn.Linear(3, 2).parameters())


def test_reads_current_lr_after_a_scheduler_step() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    spec = OptimizerSpec.from_optimizer(opt)
    assert spec == OptimizerSpec("sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    built = spec.build(_params())
    assert isinstance(built, torch.optim.SGD)
    group = built.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (
        0.05,
        0.9,
        True,
        5e-4,
    )
    assert not built.state  # fresh: no momentum buffers


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        (
            lambda p: torch.optim.Adam(p, lr=1e-3, betas=(0.8, 0.99), weight_decay=1e-4),
            OptimizerSpec("adam", lr=1e-3, betas=(0.8, 0.99), weight_decay=1e-4),
        ),
        (
            lambda p: torch.optim.AdamW(p, lr=2e-3, weight_decay=0.05),
            OptimizerSpec("adamw", lr=2e-3, weight_decay=0.05),
        ),
        (
            lambda p: torch.optim.RMSprop(p, lr=1e-2, momentum=0.5),
            OptimizerSpec("rmsprop", lr=1e-2, momentum=0.5),
        ),
    ],
    ids=["adam", "adamw", "rmsprop"],
)
def test_maps_known_optimizers(optimizer, expected: OptimizerSpec) -> None:  # type: ignore[no-untyped-def]
    spec = OptimizerSpec.from_optimizer(optimizer(_params()))
    assert spec == expected
    built = spec.build(_params())
    assert type(built).__name__.lower() == expected.name


def test_unknown_optimizer_falls_back_to_sgd_with_a_note() -> None:
    spec = OptimizerSpec.from_optimizer(torch.optim.Adagrad(_params(), lr=0.3))
    assert (spec.name, spec.lr, spec.momentum) == ("sgd", 0.3, 0.0)
    assert spec.note is not None and "Adagrad" in spec.note


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"name": "lion", "lr": 0.1},
            r"`name` must be one of \('sgd', 'adam', 'adamw', 'rmsprop'\)",
        ),
        ({"name": "sgd", "lr": -1.0}, r"`lr` must be a number >= 0, got -1.0"),
        ({"name": "sgd", "lr": float("nan")}, r"`lr` must be a number >= 0, got nan"),
        ({"name": "sgd", "lr": "0.1"}, r"`lr` must be a number >= 0, got '0.1'"),
        (
            {"name": "adam", "lr": 0.1, "betas": (0.9, 1.0)},
            r"`betas` must be a number in \[0, 1\)",
        ),
        ({"name": "adam", "lr": 0.1, "betas": 0.9}, r"`betas` must be a pair"),
        ({"name": "adam", "lr": 0.1, "nesterov": True}, r"`nesterov=True` needs `name='sgd'`"),
        ({"name": "sgd", "lr": 0.1, "nesterov": True}, r"and `momentum > 0`"),
    ],
)
def test_invalid_specs(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        OptimizerSpec(**kwargs)  # type: ignore[arg-type]


def test_from_optimizer_needs_an_optimizer() -> None:
    with pytest.raises(ConfigError, match=r"`optimizer` must be a torch.optim.Optimizer, got str"):
        OptimizerSpec.from_optimizer("sgd")  # type: ignore[arg-type]
