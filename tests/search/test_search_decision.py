import numpy as np
import pytest

from evoaug import ConfigError, Policy
from evoaug.evaluate import Evidence
from evoaug.search import EvidenceRule, credit_policies, decision_score, op_probe

IDENTITY = Policy.preset("identity")
INVERT = Policy.from_genes([[("Invert", 0.5, 0.0)]], name="invert")
ROTATE = Policy.from_genes([[("Rotate", 0.5, 1.0)]], name="rotate")
GROUPS = np.repeat([0, 1], 50)


def aligned(policy: Policy, gain: float, noise: float = 0.05, seed: int = 0) -> Evidence:
    rng = np.random.default_rng(seed)
    values = gain + noise * rng.standard_normal((2, 256))
    return Evidence(policy, values, None, GROUPS)


def looked(policy: Policy, majority: float, minority: float, seed: int = 0) -> Evidence:
    """Look-ahead evidence: two repeats; each group's accuracy as given (exactly)."""
    rng = np.random.default_rng(seed)
    correct = np.zeros((2, 100), dtype=bool)
    for r in range(2):
        for group, accuracy in ((0, majority), (1, minority)):
            members = np.flatnonzero(group == GROUPS)
            hits = rng.choice(members, size=round(accuracy * len(members)), replace=False)
            correct[r, hits] = True
    return Evidence(policy, None, correct, GROUPS)


def test_decision_score_is_the_mean_of_balanced_and_worst_group_accuracy() -> None:
    correct = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)
    groups = np.array([0, 0, 1, 1])
    # group 0: 1.0; group 1: 0.25 (over both repeats) -> (0.625 + 0.25) / 2
    assert decision_score(correct, groups) == pytest.approx(0.4375)


def test_proposal_needs_bounds_above_zero_against_the_incumbent_and_no_augmentation() -> None:
    rule = EvidenceRule(confidence=0.9)
    incumbent = aligned(IDENTITY, 0.0)
    good, noise = aligned(INVERT, 0.05, seed=1), aligned(ROTATE, 0.002, noise=0.2, seed=2)
    proposed, proposals = rule.propose(incumbent, [noise, good])
    assert proposed is good
    assert proposals["invert"]["incumbent"].lower > 0
    assert proposals["rotate"]["incumbent"].lower < 0
    assert rule.propose(incumbent, [noise])[0] is None  # a noise-sized gain is not evidence


def test_identity_challenges_an_incumbent_that_stopped_helping() -> None:
    rule = EvidenceRule()
    incumbent = aligned(INVERT, -0.05)  # worse than the clean images now
    identity = Evidence(IDENTITY, np.zeros((2, 256)), None, GROUPS)
    proposed, proposals = rule.propose(incumbent, [identity])
    assert proposed is identity
    assert set(proposals["identity"]) == {"incumbent"}  # identity need not beat itself


def test_guard_switches_on_a_clear_gain_and_keeps_the_incumbent_otherwise() -> None:
    rule = EvidenceRule(confidence=0.9, margin=0.0)
    incumbent = looked(IDENTITY, 0.9, 0.5)
    better = looked(INVERT, 0.9, 0.8, seed=1)
    decision = rule.confirm(incumbent, better, None, {})
    assert decision.changed and decision.chosen is INVERT
    # score = (balanced + worst) / 2: (0.85 + 0.8) / 2 - (0.7 + 0.5) / 2
    assert decision.guard["incumbent"].mean == pytest.approx(0.225)
    assert decision.guard["incumbent"].lower > 0
    same = looked(ROTATE, 0.9, 0.5, seed=2)
    kept = rule.confirm(incumbent, same, None, {})
    assert not kept.changed and kept.chosen is IDENTITY
    assert "failed the guard" in kept.reason and "the incumbent stays" in kept.reason


def test_guard_margin_accepts_a_gain_whose_bound_is_within_the_margin() -> None:
    incumbent = looked(IDENTITY, 0.9, 0.6)
    slightly = looked(ROTATE, 0.92, 0.62, seed=3)  # +0.02, bound below zero
    guard = EvidenceRule(margin=0.0).lookahead_advantage(slightly, incumbent)
    assert guard.mean > 0 > guard.lower > -0.2
    assert not EvidenceRule(margin=0.0).confirm(incumbent, slightly, None, {}).changed
    assert EvidenceRule(margin=0.2).confirm(incumbent, slightly, None, {}).changed
    level = looked(ROTATE, 0.9, 0.6, seed=3)  # no gain: refused whatever the margin
    assert not EvidenceRule(margin=0.2).confirm(incumbent, level, None, {}).changed


def test_a_margin_given_for_one_challenger_overrides_the_rules() -> None:
    incumbent = looked(IDENTITY, 0.9, 0.6)
    slightly = looked(ROTATE, 0.92, 0.62, seed=3)  # +0.02, bound below zero
    lenient = EvidenceRule(margin=0.2)
    strict = lenient.confirm(incumbent, slightly, None, {}, margin=0.0)
    assert not strict.changed and strict.margin == 0.0
    assert EvidenceRule(margin=0.0).confirm(incumbent, slightly, None, {}, margin=0.2).changed
    assert lenient.confirm(incumbent, slightly, None, {}).margin == 0.2  # the rule's own
    with pytest.raises(ConfigError, match="`margin` must be"):
        lenient.confirm(incumbent, slightly, None, {}, margin=-0.1)


def test_a_confidence_given_for_one_challenger_lowers_its_bound_and_is_recorded() -> None:
    incumbent = looked(IDENTITY, 0.9, 0.6)
    better = looked(ROTATE, 0.94, 0.66, seed=3)
    rule = EvidenceRule(margin=0.0)
    usual = rule.confirm(incumbent, better, None, {})
    strict = rule.confirm(incumbent, better, None, {}, confidence=0.99)
    assert usual.confidence == 0.9 and strict.confidence == 0.99
    assert strict.guard["incumbent"].mean == usual.guard["incumbent"].mean
    assert strict.guard["incumbent"].lower < usual.guard["incumbent"].lower
    assert usual.to_dict()["confidence"] == 0.9
    with pytest.raises(ConfigError, match="`confidence` must be"):
        rule.confirm(incumbent, better, None, {}, confidence=1.0)


def test_guard_also_compares_with_no_augmentation() -> None:
    rule = EvidenceRule()
    incumbent = looked(ROTATE, 0.6, 0.3)  # a harmful incumbent
    identity = looked(IDENTITY, 0.9, 0.8, seed=4)
    challenger = looked(INVERT, 0.8, 0.6, seed=5)  # beats the incumbent, not identity
    decision = rule.confirm(incumbent, challenger, identity, {})
    assert decision.guard["incumbent"].lower > 0 > decision.guard["identity"].mean
    assert not decision.changed


def test_decision_records_plain_values() -> None:
    rule = EvidenceRule()
    decision = rule.confirm(looked(IDENTITY, 0.9, 0.5), looked(INVERT, 0.9, 0.9, seed=1), None, {})
    record = decision.to_dict()
    assert record["changed"] is True and record["chosen"]["name"] == "invert"
    assert set(record["guard"]["incumbent"]) == {"mean", "lower", "n"}
    kept = rule.keep(IDENTITY, {})
    assert kept.to_dict()["challenger"] is None and not kept.changed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 0.5}, r"`confidence` must be a number in \(0.5, 1\), got 0.5"),
        ({"margin": -0.1}, r"`margin` must be a number in \[0, 1\], got -0.1"),
        ({"n_bootstrap": 10}, r"`n_bootstrap` must be an int >= 100, got 10"),
    ],
)
def test_bad_rule_arguments(kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        EvidenceRule(**kwargs)


def test_the_guard_needs_lookahead_evidence() -> None:
    with pytest.raises(ConfigError, match="needs look-ahead evidence"):
        EvidenceRule().lookahead_advantage(aligned(INVERT, 0.1), aligned(IDENTITY, 0.0))


def test_credit_policies_keep_the_ops_whose_bound_clears_zero_best_first() -> None:
    evidence = {
        "Invert": aligned(op_probe("Invert"), 0.08, seed=1),
        "Solarize": aligned(op_probe("Solarize"), 0.04, seed=2),
        "Rotate": aligned(op_probe("Rotate"), -0.05, seed=3),
        "Blur": aligned(op_probe("Rotate"), 0.003, noise=0.3, seed=4),  # noise
    }
    policies, gains = credit_policies(evidence, confidence=0.9)
    names = [p.name for p in policies]  # the best op alone, then the best two (no third)
    assert names == ["evoaug credit: Invert", "evoaug credit: Invert, Solarize"]
    pair = policies[1]
    assert [s.genes[0].op for s in pair.sub_policies] == ["Invert", "Solarize"]
    assert all(s.genes[0].probability == 0.5 for s in pair.sub_policies)  # half stay clean
    assert pair.magnitude_sampling == "uniform"
    assert gains["Rotate"][0] < 0 and gains["Blur"][1] < 0 < gains["Blur"][0]
    assert credit_policies({"Rotate": evidence["Rotate"]})[0] == []


def test_coverage_picks_the_op_that_covers_the_group_left_behind() -> None:
    from evoaug.search import coverage_policy

    groups = np.repeat([0, 1], 40)
    rng = np.random.default_rng(0)

    def ev(op: str, worst: float, other: float) -> Evidence:
        coverage = np.where(groups == 1, worst, other) + 0.02 * rng.standard_normal(80)
        return Evidence(op_probe(op), None, None, groups, coverage=coverage, worst_group=1)

    evidence = {
        "VerticalFlip": ev("VerticalFlip", 0.30, 0.02),  # covers group 1 specifically
        "Rotate": ev("Rotate", 0.20, 0.20),  # helps everyone alike: not specific
        "Invert": ev("Invert", 0.10, 0.00),
    }
    policy, gains = coverage_policy(evidence)
    assert policy is not None and policy.name == "evoaug coverage: VerticalFlip"
    assert policy.sub_policies[0].genes[0].probability == 0.5
    assert gains["Rotate"][1] < 0 < gains["Invert"][1] < gains["VerticalFlip"][1]
    policy, _ = coverage_policy(evidence, exclude={"VerticalFlip"})  # resting: the next op
    assert policy is not None and policy.name == "evoaug coverage: Invert"
    no_groups = {
        op: Evidence(e.policy, None, None, None, coverage=e.coverage) for op, e in evidence.items()
    }
    assert coverage_policy(no_groups) == (None, {})
