"""The swap decision: the incumbent policy stays unless a challenger has evidence it does better.

DESIGN.md ("do no harm"): the policy that trains next must have evidence of being better than
keeping the current one and than no augmentation, measured paired, with its uncertainty;
without that evidence the incumbent stays. :class:`EvidenceRule` decides in two stages, each on
per-image evidence (:class:`evoaug.evaluate.Evidence`):

1. **Proposal** (cheap): a challenger's gradient-alignment gain (the mean of the balanced and
   worst-group gains) must beat the incumbent's and no augmentation's, paired image by image:
   the one-sided lower confidence bound of the mean difference is above 0. Identity is a
   challenger too when the incumbent is not identity: a policy that stopped helping is dropped.
2. **Guard** (a look-ahead): after k steps on the challenger, on the incumbent and on no
   augmentation, from the same weights with the same batches and seeds, the challenger's
   decision score (the mean of balanced and worst-group accuracy on the group-stratified
   validation probe) must be higher than each, and its lower bound (a bootstrap over
   validation images resampled within groups, paired: the same resample for both) above
   ``-margin``.

Alignment proposes, with evidence, what helps the model's next steps for the groups that need
it; the guard refuses what does worse within the look-ahead's horizon, and what may do more
than ``margin`` worse. ``margin=0`` asks the guard for evidence of a gain too; the callback
gives the margin only to challengers with evidence from outside the look-ahead (no
augmentation, and the op that covers the group left behind) and asks the others for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from evoaug._checks import check_int, check_number
from evoaug.evaluate import Evidence
from evoaug.exceptions import ConfigError
from evoaug.policy import Policy

__all__ = ["Advantage", "Decision", "EvidenceRule", "decision_score"]


@dataclass(frozen=True)
class Advantage:
    """How much better one policy did than another, paired, with a one-sided lower bound.

    Attributes:
        mean: The estimated advantage (positive: the first policy did better).
        lower: Its lower confidence bound.
        n: Paired units (images) it rests on.
    """

    mean: float
    lower: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        """Plain values for the decision file."""
        return {"mean": self.mean, "lower": self.lower, "n": self.n}


def decision_score(correct: np.ndarray, groups: np.ndarray | None) -> float:
    """The mean of balanced and worst-group accuracy of ``correct`` (``[M]`` or ``[R, M]``).

    Example:
        >>> decision_score(np.array([1, 1, 1, 0]), np.array([0, 0, 1, 1]))  # 1.0 and 0.5
        0.625
    """
    hits = np.asarray(correct, dtype=np.float64)
    hits = hits.mean(axis=0) if hits.ndim == 2 else hits
    groups = np.zeros(len(hits), dtype=np.int64) if groups is None else np.asarray(groups)
    per_group = [hits[groups == g].mean() for g in np.unique(groups)]
    return float(0.5 * (np.mean(per_group) + np.min(per_group)))


@dataclass(frozen=True)
class Decision:
    """What a round decided, and why: one line of ``decisions.jsonl``.

    Attributes:
        incumbent: The policy trained with before the decision.
        chosen: The policy trained with after it (the incumbent when nothing changed).
        challenger: The challenger that reached the guard, or ``None``.
        changed: Whether the policy changed.
        reason: In words.
        proposals: Per candidate challenger (by name): its alignment advantage over the
            incumbent and over no augmentation.
        guard: The challenger's look-ahead advantage over the incumbent and over no
            augmentation (empty when no guard ran).
        margin: How far below zero the guard let the challenger's bounds be (``None`` when
            no guard ran).
        confidence: The confidence of the guard's bounds (``None`` when no guard ran).
    """

    incumbent: Policy
    chosen: Policy
    challenger: Policy | None
    changed: bool
    reason: str
    proposals: dict[str, dict[str, Advantage]] = field(default_factory=dict)
    guard: dict[str, Advantage] = field(default_factory=dict)
    margin: float | None = None
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values: policies as dicts, advantages as ``{mean, lower, n}``."""
        return {
            "incumbent": self.incumbent.to_dict(),
            "chosen": self.chosen.to_dict(),
            "challenger": None if self.challenger is None else self.challenger.to_dict(),
            "changed": self.changed,
            "reason": self.reason,
            "proposals": {
                name: {k: a.to_dict() for k, a in versus.items()}
                for name, versus in self.proposals.items()
            },
            "guard": {k: a.to_dict() for k, a in self.guard.items()},
            "margin": self.margin,
            "confidence": self.confidence,
        }


def _name(policy: Policy) -> str:
    return policy.name or "custom"


class EvidenceRule:
    """Decide whether a challenger replaces the incumbent (see the module docstring).

    Args:
        confidence: One-sided confidence of every lower bound, in ``(0.5, 1)``.
        margin: How much worse than the incumbent (in decision score, a fraction of accuracy)
            the guard's lower bound may let a challenger be, when its estimate is a gain; 0
            asks for a lower bound above zero.
        n_bootstrap: Bootstrap resamples of the guard's lower bounds.
        seed: Seed of the bootstrap.

    Example:
        >>> rule = EvidenceRule(confidence=0.9)
        >>> rule.confidence, rule.margin
        (0.9, 0.02)
    """

    def __init__(
        self,
        *,
        confidence: float = 0.9,
        margin: float = 0.02,
        n_bootstrap: int = 2000,
        seed: int = 0,
    ) -> None:
        self.confidence = check_number(
            "confidence", confidence, low=0.5, high=1.0, low_open=True, high_open=True
        )
        self.margin = check_number("margin", margin, low=0.0, high=1.0)
        self.n_bootstrap = check_int("n_bootstrap", n_bootstrap, low=100)
        self.seed = check_int("seed", seed, low=0)
        self._z = NormalDist().inv_cdf(self.confidence)

    # ---------------------------------------------------------------- stage 1: proposal

    def alignment_advantage(self, first: Evidence, second: Evidence | None) -> Advantage:
        """``first``'s alignment gain over ``second``'s (``None``: no augmentation), paired."""
        a = _alignment_score(first)
        b = np.zeros_like(a) if second is None else _alignment_score(second)
        d = a - b
        mean = float(d.mean())
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else math.inf
        return Advantage(mean, mean - self._z * se, len(d))

    def propose(
        self, incumbent: Evidence, challengers: Sequence[Evidence]
    ) -> tuple[Evidence | None, dict[str, dict[str, Advantage]]]:
        """The first challenger, in the given (priority) order, whose bounds clear 0, if any.

        Identity (a policy with no ops besides ``Identity``) needs to beat the incumbent only.

        Returns:
            ``(challenger or None, the advantages of every candidate challenger)``.
        """
        proposals: dict[str, dict[str, Advantage]] = {}
        first: Evidence | None = None
        for evidence in challengers:
            if not evidence.ok or evidence.policy == incumbent.policy:
                continue
            versus = {"incumbent": self.alignment_advantage(evidence, incumbent)}
            if not _is_identity(evidence.policy):
                versus["identity"] = self.alignment_advantage(evidence, None)
            proposals[_name(evidence.policy)] = versus
            if first is None and all(a.lower > 0 for a in versus.values()):
                first = evidence
        return first, proposals

    # ---------------------------------------------------------------- stage 2: guard

    def lookahead_advantage(
        self, first: Evidence, second: Evidence, *, confidence: float | None = None
    ) -> Advantage:
        """``first``'s decision-score advantage over ``second`` after their look-aheads.

        The lower bound is the ``1 - confidence`` quantile of a paired bootstrap: validation
        images resampled within their groups, the same resample for both policies.
        ``confidence`` overrides the rule's.
        """
        confidence = self.confidence if confidence is None else confidence
        if first.correct is None or second.correct is None:
            raise ConfigError("the guard needs look-ahead evidence of both policies")
        a = first.correct.mean(axis=0)
        b = second.correct.mean(axis=0)
        groups = first.groups
        mean = decision_score(a, groups) - decision_score(b, groups)
        rng = np.random.default_rng(self.seed)
        per_a, per_b = [], []  # per group: [n_bootstrap] resampled accuracies
        for members in _group_members(groups, len(a)):
            index = members[rng.integers(0, len(members), size=(self.n_bootstrap, len(members)))]
            per_a.append(a[index].mean(axis=1))
            per_b.append(b[index].mean(axis=1))
        score_a = 0.5 * (np.mean(per_a, axis=0) + np.min(per_a, axis=0))
        score_b = 0.5 * (np.mean(per_b, axis=0) + np.min(per_b, axis=0))
        lower = float(np.quantile(score_a - score_b, 1.0 - confidence))
        return Advantage(float(mean), lower, len(a))

    def confirm(
        self,
        incumbent: Evidence,
        challenger: Evidence,
        identity: Evidence | None,
        proposals: dict[str, dict[str, Advantage]],
        *,
        margin: float | None = None,
        confidence: float | None = None,
    ) -> Decision:
        """The decision after the guard's look-aheads.

        ``identity`` is no augmentation's evidence, or ``None`` to compare the challenger
        with the incumbent alone (when either is identity, or before no augmentation's
        look-ahead is worth running: a challenger that does not beat the incumbent is refused
        anyway). ``margin`` and ``confidence`` override the rule's for this challenger (the
        callback asks the challengers without evidence from outside the look-ahead for a
        bound above zero, ``margin=0``, at a confidence corrected for the fit's number of
        guards).
        """
        margin = self.margin if margin is None else check_number("margin", margin, low=0.0)
        if confidence is not None:
            check_number("confidence", confidence, low=0.5, high=1.0, low_open=True, high_open=True)
        guard = {
            "incumbent": self.lookahead_advantage(challenger, incumbent, confidence=confidence)
        }
        if identity is not None:
            guard["identity"] = self.lookahead_advantage(
                challenger, identity, confidence=confidence
            )
        passed = all(a.mean > 0 and a.lower > -margin for a in guard.values())
        name = _name(challenger.policy)
        text = ", ".join(f"{k} {a.mean:+.3f} (bound {a.lower:+.3f})" for k, a in guard.items())
        reason = (
            f"{name} passed the guard: look-ahead advantage over {text}"
            if passed
            else f"{name} failed the guard (look-ahead advantage over {text}); the incumbent stays"
        )
        return Decision(
            incumbent=incumbent.policy,
            chosen=challenger.policy if passed else incumbent.policy,
            challenger=challenger.policy,
            changed=passed,
            reason=reason,
            proposals=proposals,
            guard=guard,
            margin=margin,
            confidence=self.confidence if confidence is None else confidence,
        )

    def keep(self, incumbent: Policy, proposals: dict[str, dict[str, Advantage]]) -> Decision:
        """The decision when no challenger was proposed: the incumbent stays."""
        reason = (
            "no challenger's alignment gain cleared its bounds; the incumbent stays"
            if proposals
            else "no challenger differed from the incumbent; it stays"
        )
        return Decision(incumbent, incumbent, None, False, reason, proposals)

    def __repr__(self) -> str:
        return f"EvidenceRule(confidence={self.confidence}, margin={self.margin})"


def _alignment_score(evidence: Evidence) -> np.ndarray:
    if evidence.alignment is None:
        raise ConfigError("the proposal needs alignment evidence")
    return np.asarray(evidence.alignment.mean(axis=0), dtype=np.float64)


def _group_members(groups: np.ndarray | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n)]
    return [np.flatnonzero(groups == g) for g in np.unique(groups)]


def _is_identity(policy: Policy) -> bool:
    return set(policy.ops) <= {"Identity"}
