"""Gradient alignment and coverage: the estimator's values, the evidence and its errors."""

import numpy as np
import pytest
import torch
from torch import nn

from evoaug import ConfigError, Evaluator, OptimizerSpec, Policy, Probe
from evoaug.evaluate import gather_evidence
from evoaug.search import op_probe

SGD = OptimizerSpec("sgd", lr=0.1)


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 2))


def shapes(n: int, flipped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: a bar at the top; class 1: a bar on the left; `flipped` turns images upside down."""
    g = torch.Generator().manual_seed(n)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.2
    y = torch.arange(n) % 2
    x[y == 0, :, :2, :] = 1.0
    x[y == 1, :, :, :2] = 1.0
    x[y == 1, :, :3, :2] = 0.2  # asymmetric: flipping is visible
    x[flipped] = x[flipped].flip(-2)
    return x, y


def test_identity_gains_nothing_and_the_estimator_needs_no_lookahead() -> None:
    x, y = shapes(64, torch.zeros(64, dtype=torch.bool))
    probe = Probe(x, y, groups=y)
    evaluator = Evaluator(objectives=("accuracy", "fairness"), estimator="alignment")
    assert not any(o.uses_lookahead for o in evaluator.objectives.values())
    [identity, invert] = evaluator.evaluate(
        net(), nn.functional.cross_entropy, SGD, probe, probe,
        [Policy.preset("identity"), Policy.from_genes([[("Invert", 1.0, 0.0)]])], seed=0,
    )  # fmt: skip
    assert identity.objectives == {"accuracy": 0.0, "fairness": 0.0}
    assert invert.ok and invert.objectives["accuracy"] != 0.0
    # forward passes only: draw 0 of the alignment images (256 by default), no look-ahead
    assert evaluator.scoring_images(train_probe=512, val_probe=256) == 256


def test_a_model_whose_output_is_not_its_last_linear_is_refused() -> None:
    x, y = shapes(32, torch.zeros(32, dtype=torch.bool))
    probe = Probe(x, y, groups=y)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2), nn.LogSoftmax(dim=1))
    with pytest.raises(ConfigError, match=r"outputs of '1' differ from the model's outputs"):
        Evaluator(objectives=("accuracy",), estimator="alignment", batch_size=16).evaluate(
            model, nn.functional.nll_loss, SGD, probe, probe, [Policy.preset("identity")], seed=0
        )


def test_evidence_is_paired_deterministic_and_leaves_the_model_alone() -> None:
    train = Probe(*shapes(64, torch.zeros(64, dtype=torch.bool)))
    flipped = torch.arange(64) % 4 == 0
    vx, vy = shapes(64, flipped)
    val = Probe(vx, vy, groups=flipped.long())
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluator = Evaluator(lookahead_steps=3, batch_size=16)
    policies = [op_probe("VerticalFlip"), op_probe("Brightness")]

    def gather():  # type: ignore[no-untyped-def]
        return gather_evidence(
            evaluator, model, nn.functional.cross_entropy, SGD, train, val, policies,
            seed=0, lookahead_repeats=2,
        )  # fmt: skip

    first, second = gather(), gather()
    for a, b in zip(first, second, strict=True):
        assert a.ok and np.array_equal(a.alignment, b.alignment)
        assert np.array_equal(a.correct, b.correct) and np.array_equal(a.coverage, b.coverage)
    flip = first[0]
    assert flip.alignment.shape == (2, 64) and flip.correct.shape == (2, 64)
    assert flip.worst_group is not None and flip.groups.tolist() == flipped.long().tolist()
    # the flip brings the training images to the flipped validation images: covers group 1
    group = flip.groups == 1
    assert flip.coverage[group].mean() > 0.2 > flip.coverage[~group].mean()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_policys_lookahead_evidence_does_not_depend_on_the_policies_beside_it() -> None:
    # The guard runs no augmentation's look-ahead alone, after the others: the same seeds
    # must give it the same evidence as beside them.
    train = Probe(*shapes(64, torch.zeros(64, dtype=torch.bool)))
    flipped = torch.arange(64) % 4 == 0
    val = Probe(*shapes(64, flipped), groups=flipped.long())
    model = net()
    evaluator = Evaluator(lookahead_steps=2, batch_size=16)
    identity, noise = Policy.preset("identity"), op_probe("GaussianNoise")

    def lookahead(policies):  # type: ignore[no-untyped-def]
        return gather_evidence(
            evaluator, model, nn.functional.cross_entropy, OptimizerSpec("sgd", lr=1.0),
            train, val, policies, seed=3, alignment=False, lookahead_repeats=2,
        )  # fmt: skip

    together = lookahead([op_probe("VerticalFlip"), noise, identity])
    # the look-aheads differ between policies and repeats: equal arrays below are not chance
    assert together[1].correct.mean(axis=1).tolist() == [0.5, 0.75]
    assert together[2].correct.mean(axis=1).tolist() == [0.703125, 0.75]
    assert np.array_equal(together[2].correct, lookahead([identity])[0].correct)
    assert np.array_equal(together[1].correct, lookahead([noise])[0].correct)
