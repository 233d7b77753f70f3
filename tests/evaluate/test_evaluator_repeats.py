"""``Evaluator(repeats=r)``: each candidate scored r times, each with its own seed; means."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import evoaug
from evoaug import Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe
from evoaug.evaluate._isolation import derive_seed
from evoaug.exceptions import ConfigError

POLICIES = [
    Policy.preset("identity"),
    Policy.preset("trivialaugment"),
    Policy.preset("randaugment"),
]


@pytest.fixture
def flaky_op() -> Iterator[str]:
    """An op that yields NaN when the first image's magnitude is negative: for some seeds."""

    @evoaug.register_op("RepeatsFlaky", low=0.0, high=1.0, signed=True)
    def flaky(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        bad = bool(magnitudes[0] < 0)
        return images * float("nan") if bad else images

    yield "RepeatsFlaky"
    evoaug.ops.unregister_op("RepeatsFlaky")


def test_repeats_average_runs_with_derived_seeds(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    single = Evaluator(lookahead_steps=3, batch_size=32)
    seeds = [7, derive_seed(7, "repeat.1"), derive_seed(7, "repeat.2")]
    runs = [single.evaluate(model, F.cross_entropy, sgd, *probes, POLICIES, seed=s) for s in seeds]
    averaged = Evaluator(lookahead_steps=3, batch_size=32, repeats=3).evaluate(
        model, F.cross_entropy, sgd, *probes, POLICIES, seed=7
    )
    for i, result in enumerate(averaged):
        assert result.ok
        for name, value in result.objectives.items():
            expected = math.fsum(run[i].objectives[name] for run in runs) / 3
            assert value == pytest.approx(expected, abs=1e-12), name
        assert result.seconds > 0
    # the repeats differ, so the mean is not just the first run
    accuracies = {run[1].objectives["accuracy"] for run in runs}
    assert len(accuracies) > 1


def test_one_repeat_is_the_plain_call(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec
) -> None:
    a = Evaluator(lookahead_steps=2, batch_size=32).evaluate(
        model, F.cross_entropy, sgd, *probes, POLICIES, seed=3
    )
    b = Evaluator(lookahead_steps=2, batch_size=32, repeats=1).evaluate(
        model, F.cross_entropy, sgd, *probes, POLICIES, seed=3
    )
    assert [r.objectives for r in a] == [r.objectives for r in b]


def test_a_candidate_failing_in_any_repeat_fails(
    model: nn.Module, probes: tuple[Probe, Probe], sgd: OptimizerSpec, flaky_op: str
) -> None:
    policy = Policy.from_genes([[(flaky_op, 1.0, 1.0)]])
    ev = Evaluator(objectives=("difficulty",), batch_size=32, difficulty_size=1, repeats=4)
    (result,) = ev.evaluate(model, F.cross_entropy, sgd, *probes, [policy], seed=0)
    single = Evaluator(objectives=("difficulty",), batch_size=32, difficulty_size=1)
    seeds = [0] + [derive_seed(0, f"repeat.{r}") for r in range(1, 4)]
    alone = [
        single.evaluate(model, F.cross_entropy, sgd, *probes, [policy], seed=s)[0] for s in seeds
    ]
    assert any(r.ok for r in alone) and not all(r.ok for r in alone)
    assert not result.ok
    assert result.failure == next(r.failure for r in alone if not r.ok)
    assert math.isnan(result.objectives["difficulty"])


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True, "2"])
def test_repeats_is_validated(repeats: object) -> None:
    with pytest.raises(ConfigError, match=r"`repeats` must be an int >= 1, got "):
        Evaluator(repeats=repeats)  # type: ignore[arg-type]
