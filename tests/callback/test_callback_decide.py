"""The decision: challengers, refused ones, the guard, the regularizer and its trial."""

import numpy as np
import pytest
import torch

from evoaug import ConfigError, EvoAugCallback, Policy
from evoaug.callback._compose import policy_key as key
from evoaug.callback._decide import Decider
from evoaug.callback._trial import FOREVER, Fit, Trial, verdict_epoch
from evoaug.evaluate import Evaluator, Evidence


def decider(**settings):  # type: ignore[no-untyped-def]
    cb = EvoAugCallback(**settings)
    return Decider(cb.config, Evaluator(), cb.space)


def correct(hits: int, n: int = 200) -> torch.Tensor:
    return torch.arange(n) < hits


def test_a_regularizer_on_trial_is_dropped_when_validation_gets_worse() -> None:
    d = decider()
    regularized, identity = Policy.preset("trivialaugment"), Policy.preset("identity")
    d.trial = Trial(key(regularized), identity, correct(120), since=27, until=51)
    fitted, dip = correct(200), correct(150)  # the clean training probe: fitted, not yet
    assert d._trial_verdict(regularized, Fit(fitted, correct(90)), 27, 60) is None  # same epoch
    for epoch in (28, 34, 50):  # the dip, however long, is waited out until the model refits
        assert d._trial_verdict(regularized, Fit(dip, correct(90)), epoch, 60) is None
    assert d.trial is not None and not d.trial.judged
    verdict = d._trial_verdict(regularized, Fit(fitted, correct(90)), 46, 60)  # refitted
    assert verdict is not None and verdict.changed
    assert verdict.chosen == identity
    assert verdict.reason.startswith(
        "the validation probe's accuracy fell from 60.0% to 45.0% since trivialaugment was "
        "adopted as a regularizer (30 images lost, 0 gained, p=0.000): back to identity"
    )
    assert d.trial is None and d.resting[key(regularized)] == FOREVER  # not offered again


@pytest.mark.parametrize(
    ("fit", "epoch", "lost_beyond_chance"),
    [
        (Fit(correct(200), correct(130)), 46, False),  # refitted, validation better
        (Fit(correct(150), correct(117)), 51, False),  # not refitted by epoch 51: 3 lost, p 1/8
        (Fit(correct(150), correct(100)), 51, True),  # 20 lost, none gained
    ],
    ids=["refitted and better", "chance", "worse"],
)
def test_a_trial_gives_one_verdict(fit: Fit, epoch: int, lost_beyond_chance: bool) -> None:
    d = decider()
    regularized, identity = Policy.preset("trivialaugment"), Policy.preset("identity")
    d.trial = Trial(key(regularized), identity, correct(120), since=27, until=51)
    verdict = d._trial_verdict(regularized, fit, epoch, 60)
    assert verdict is not None and verdict.changed == lost_beyond_chance
    if lost_beyond_chance:
        assert verdict.chosen == identity and d.trial is None
        return
    assert verdict.chosen == regularized and verdict.reason.startswith(
        "trivialaugment stays as a regularizer: the validation probe's accuracy is "
    )
    assert d.trial is not None and d.trial.judged  # held: identity is still not offered
    worse = Fit(correct(200), correct(10))
    assert d._trial_verdict(regularized, worse, epoch + 1, 60) is None  # no second verdict


@pytest.mark.parametrize(
    ("epoch", "max_epochs", "until"),
    [(27, 60, 51), (7, 15, 13), (13, 15, 16), (5, 0, 8)],
    ids=["3/4 of 33 left", "3/4 of 8 left", "at least 3", "unbounded fit"],
)
def test_a_trial_waits_three_quarters_of_the_epochs_left_at_most(
    epoch: int, max_epochs: int, until: int
) -> None:
    assert verdict_epoch(epoch, max_epochs) == until


def test_a_trial_survives_a_checkpoint_and_bad_state_is_refused() -> None:
    d = decider()
    d.trial = Trial(
        "TrivialAugment:1.0000:0.0000",
        Policy.preset("identity"),
        correct(3, 5),
        since=27,
        until=51,
        judged=True,
    )
    state = d.trial_state()
    assert state["correct"] == [1, 1, 1, 0, 0]
    assert (state["since"], state["until"], state["judged"]) == (27, 51, True)
    restored = decider()
    restored.load_trial_state(state)
    assert restored.trial is not None
    assert restored.trial.key == d.trial.key and restored.trial.fallback == d.trial.fallback
    assert (restored.trial.since, restored.trial.until, restored.trial.judged) == (27, 51, True)
    assert torch.equal(restored.trial.correct, d.trial.correct)
    restored.load_trial_state({})
    assert restored.trial is None
    with pytest.raises(ConfigError, match="must have 'key', 'fallback' and 'correct'"):
        restored.load_trial_state({"key": "x"})


def test_a_challenger_with_only_the_lookahead_shares_the_confidence_among_the_fit(
    monkeypatch,
) -> None:  # type: ignore[no-untyped-def]
    d = decider(credit=False, regularizer=None)
    identity, pick = Policy.preset("identity"), Policy.preset("trivialaugment")
    groups = np.repeat([0, 1], 50)
    rng = np.random.default_rng(0)

    def gather(module, optimizer, probes, policies, seed, *, repeats=0):  # type: ignore[no-untyped-def]
        if repeats == 0:  # alignment: the front's pick clearly ahead
            gains = {key(identity): 0.0, key(pick): 0.2}
            return [
                Evidence(p, gains[key(p)] + 0.01 * rng.standard_normal((2, 256)), None, groups)
                for p in policies
            ]
        hits = {
            key(identity): 60,
            key(pick): 90,
        }  # of 100 validation images, 2 repeats
        return [
            Evidence(p, None, np.tile(np.arange(100) < hits[key(p)], (2, 1)), groups)
            for p in policies
        ]

    monkeypatch.setattr(d, "_gather", gather)
    decision, _ = d.decide(None, None, None, identity, pick, seed=0, planned=10)
    assert decision.challenger == pick and decision.margin == 0.0
    assert decision.confidence == pytest.approx(1 - 0.1 / 10)


def test_between_generations_the_regularizer_is_adopted_once_the_model_fits(
    monkeypatch,
) -> None:  # type: ignore[no-untyped-def]
    import types

    probes = types.SimpleNamespace(train=types.SimpleNamespace(images=torch.zeros(1, 3, 32, 32)))
    identity, ta = Policy.preset("identity"), Policy.preset("trivialaugment")
    d = decider()
    # What measure_fit gives: None out of the regime (tests/evaluate/test_clean_correct.py
    # checks the regime's bounds), both probes' correctness in it.
    fits: list[Fit | None] = [
        None,  # the training probe is not fitted
        None,  # fitted, but validation only 4.5 points behind
        Fit(correct(199), correct(120)),  # fitted, validation 39.5 points behind
    ]
    monkeypatch.setattr(d, "_fit", lambda module, probes: fits.pop(0))
    assert d.check_fit(None, probes, identity, epoch=25, max_epochs=60) is None
    assert d.check_fit(None, probes, identity, epoch=26, max_epochs=60) is None
    adopted = d.check_fit(None, probes, identity, epoch=27, max_epochs=60)
    assert adopted is not None and adopted.changed and adopted.chosen == ta
    assert adopted.incumbent == identity and adopted.guard == {}
    assert adopted.reason.startswith(
        "the model fits 99.5% of its clean training probe and 60.0% of its validation probe: "
        "trivialaugment is adopted as a regularizer"
    )
    assert d.trial is not None and d.trial.fallback == identity
    assert (d.trial.since, d.trial.until) == (27, 51)
    assert torch.equal(d.trial.correct, correct(120))
    # On trial, the epoch-end checks give the verdict once the model fits its images again.
    monkeypatch.setattr(d, "_fit", lambda module, probes: Fit(correct(150), correct(80)))
    assert d.check_fit(None, probes, ta, epoch=50, max_epochs=60) is None  # still in its dip
    monkeypatch.setattr(d, "_fit", lambda module, probes: Fit(correct(200), correct(80)))
    dropped = d.check_fit(None, probes, ta, epoch=51, max_epochs=60)
    assert dropped is not None and dropped.chosen == identity
    assert dropped.reason.startswith("the validation probe's accuracy fell from 60.0% to 40.0%")

    def unread(module, probes):  # type: ignore[no-untyped-def]
        raise AssertionError("the fit is not measured when nothing could be adopted")

    monkeypatch.setattr(d, "_fit", unread)
    assert d.check_fit(None, probes, identity, epoch=44) is None  # it rests for good
    d.resting.clear()
    assert d.check_fit(None, probes, ta, epoch=44) is None  # the incumbent has it
    assert decider(regularizer=None).check_fit(None, probes, identity, epoch=44) is None


@pytest.mark.parametrize(
    ("hits", "gathered", "changed", "compared"),
    [
        # the incumbent beats the challenger: no augmentation's look-ahead never runs
        ({"incumbent": 80, "challenger": 60, "identity": 10}, 1, False, {"incumbent"}),
        # the challenger beats the incumbent but not no augmentation
        ({"incumbent": 60, "challenger": 80, "identity": 95}, 2, False, {"incumbent", "identity"}),
        ({"incumbent": 60, "challenger": 80, "identity": 50}, 2, True, {"incumbent", "identity"}),
    ],
)
def test_the_guard_runs_no_augmentations_lookahead_only_when_the_challenger_beats_the_incumbent(
    monkeypatch, hits, gathered, changed, compared
) -> None:  # type: ignore[no-untyped-def]
    d = decider(credit=False, regularizer=None)
    incumbent = Policy.from_genes([[("VerticalFlip", 0.5, 1.0)]], name="incumbent")
    challenger = Policy.from_genes([[("VerticalFlip", 0.5, 1.0), ("Solarize", 0.5, 1.0)]])
    names = {
        key(incumbent): "incumbent",
        key(challenger): "challenger",
        key(d.identity): "identity",
    }
    groups = np.repeat([0, 1], 50)
    calls: list[tuple[list[str], int]] = []

    def gather(module, optimizer, probes, policies, seed, *, repeats=0):  # type: ignore[no-untyped-def]
        calls.append(([names[key(p)] for p in policies], seed))
        return [
            Evidence(p, None, np.tile(np.arange(100) < hits[names[key(p)]], (1, 1)), groups)
            for p in policies
        ]

    monkeypatch.setattr(d, "_gather", gather)
    decision = d._guard(None, None, None, incumbent, challenger, {}, 7, margin=0.0, confidence=0.9)
    assert calls[:gathered] == [(["incumbent", "challenger"], 8), (["identity"], 8)][:gathered]
    assert len(calls) == gathered
    assert decision.changed is changed and set(decision.guard) == compared
    assert (key(challenger) in d.resting) is not changed


def test_a_failed_lookahead_of_no_augmentation_keeps_the_incumbent(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    d = decider(credit=False, regularizer=None)
    incumbent = Policy.from_genes([[("VerticalFlip", 0.5, 1.0)]], name="incumbent")
    challenger = Policy.from_genes([[("Solarize", 0.5, 1.0)]], name="challenger")
    groups = np.repeat([0, 1], 50)

    def gather(module, optimizer, probes, policies, seed, *, repeats=0):  # type: ignore[no-untyped-def]
        if policies == [d.identity]:
            return [Evidence(d.identity, None, None, groups, failure="non-finite loss")]
        hits = [60, 80]
        return [
            Evidence(p, None, (np.arange(100) < h)[None], groups)
            for p, h in zip(policies, hits, strict=True)
        ]

    monkeypatch.setattr(d, "_gather", gather)
    decision = d._guard(None, None, None, incumbent, challenger, {}, 0, margin=0.0, confidence=0.9)
    assert not decision.changed and decision.chosen == incumbent
    assert decision.reason == "the guard could not score identity: non-finite loss"
    assert d.resting == {}  # a failure is not a refusal: the challenger may come back


def test_a_refused_covering_op_leaves_the_regularizer_its_turn_in_the_same_generation(
    monkeypatch,
) -> None:  # type: ignore[no-untyped-def]
    import types

    import evoaug.callback._decide as decide_module

    d = decider()
    identity, ta = Policy.preset("identity"), Policy.preset("trivialaugment")
    covering = Policy.from_genes([[("Grayscale", 0.5, 1.0)]], name="evoaug coverage: Grayscale")
    probes = types.SimpleNamespace(train=types.SimpleNamespace(images=torch.zeros(1, 3, 32, 32)))
    groups = np.repeat([0, 1], 50)

    def gather(module, optimizer, probes, policies, seed, *, repeats=0):  # type: ignore[no-untyped-def]
        if repeats == 0:
            return [Evidence(p, np.zeros((2, 8)), None, groups) for p in policies]
        hits = {
            key(identity): 80,
            key(covering): 60,
        }  # the guard refuses the covering op
        return [Evidence(p, None, (np.arange(100) < hits[key(p)])[None], groups) for p in policies]

    monkeypatch.setattr(d, "_gather", gather)
    monkeypatch.setattr(d, "_fit", lambda module, probes: Fit(correct(200), correct(120)))
    monkeypatch.setattr(decide_module, "coverage_policy", lambda *a, **k: (covering, None))
    monkeypatch.setattr(decide_module, "credit_policies", lambda *a, **k: ([], {}))
    proposal = types.SimpleNamespace(policy=covering)
    monkeypatch.setattr(d.rule, "propose", lambda incumbent, challengers: (proposal, {}))
    decision, _ = d.decide(None, None, probes, identity, None, seed=0, epoch=31, max_epochs=60)
    assert decision.changed and decision.chosen == ta and decision.guard == {}
    assert decision.reason.startswith("evoaug coverage: Grayscale failed the guard")
    assert decision.reason.endswith(
        "trivialaugment is adopted as a regularizer (a look-ahead "
        "cannot see its gain over the epochs left)"
    )
    assert d.trial is not None and (d.trial.since, d.trial.fallback) == (31, identity)
    assert key(covering) in d.resting  # refused: it sits out, as any refused challenger
