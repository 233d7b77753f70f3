"""Credit per op: which single ops the model's next steps would gain from, and a policy of them.

Each op of the vocabulary is scored alone, as TrivialAugment draws it (applied to every image,
its level uniform in the op's range), by its per-image gradient-alignment gain over the clean
image (:class:`evoaug.evaluate.Evidence`). The ops whose gain has a lower confidence bound above
zero, best first, make the **credit policies**: the best op alone, the best two, the best four;
each image draws one of the policy's ops, applies it with probability 1/2 (half of each batch
stays clean) at a uniform level. They are the decision rule's challengers beside the front's
pick, so that a search whose useful move is one op finds that op even when its genomes spread
over many.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from statistics import NormalDist

import numpy as np

from evoaug.evaluate import Evidence
from evoaug.policy import Gene, Interpolation, Policy, SubPolicy

__all__ = [
    "CREDIT_PROBABILITY",
    "CREDIT_SIZES",
    "coverage_policy",
    "credit_ops",
    "credit_policies",
    "op_probe",
]

CREDIT_PROBABILITY = 0.5
"""Probability that a credit-policy image is augmented: half of each batch stays clean."""

CREDIT_SIZES = (1, 2, 4)
"""The credit policies hold the best op, the best two, the best four (those that qualify)."""


def op_probe(op: str, interpolation: Interpolation = "bilinear") -> Policy:
    """The single-op policy that scores ``op``'s credit: always applied, uniform level.

    Example:
        >>> op_probe("Invert").sub_policies[0].genes[0]
        Gene(op='Invert', probability=1.0, level=1.0)
    """
    gene = Gene(op, 1.0, 1.0)
    return Policy(
        (SubPolicy((gene,)),),
        name=f"op {op}",
        magnitude_sampling="uniform",
        interpolation=interpolation,
    )


def credit_policies(
    evidence: Mapping[str, Evidence],
    *,
    confidence: float = 0.9,
    interpolation: Interpolation = "bilinear",
    exclude: Collection[str] = (),
) -> tuple[list[Policy], dict[str, tuple[float, float]]]:
    """The credit policies from per-op evidence (see the module docstring).

    Args:
        evidence: Per op name, the evidence of :func:`op_probe` of that op.
        confidence: One-sided confidence of the lower bounds.
        interpolation: The policies' warps' interpolation.
        exclude: Ops left out of the policies (the guard refused them lately); their gains
            are still returned.

    Returns:
        ``(policies, {op: (mean gain, lower bound)})``: the policies of :data:`CREDIT_SIZES`
        that the qualifying ops fill (none when no op's bound clears zero).

    Example:
        >>> import numpy as np
        >>> good = Evidence(op_probe("Invert"), np.full((2, 64), 0.1), None, None)
        >>> fair = Evidence(op_probe("Solarize"), np.full((2, 64), 0.05), None, None)
        >>> bad = Evidence(op_probe("Rotate"), np.full((2, 64), -0.1), None, None)
        >>> policies, gains = credit_policies({"Invert": good, "Rotate": bad, "Solarize": fair})
        >>> [p.name for p in policies]
        ['evoaug credit: Invert', 'evoaug credit: Invert, Solarize']
    """
    z = NormalDist().inv_cdf(confidence)
    gains: dict[str, tuple[float, float]] = {}
    for op, ev in evidence.items():
        if not ev.ok or ev.alignment is None:
            continue
        per_image = np.asarray(ev.alignment.mean(axis=0), dtype=np.float64)
        mean = float(per_image.mean())
        se = float(per_image.std(ddof=1) / math.sqrt(len(per_image))) if len(per_image) > 1 else 0.0
        gains[op] = (mean, mean - z * se if len(per_image) > 1 else -math.inf)
    qualified = (op for op, (_, low) in gains.items() if low > 0 and op not in exclude)
    ranked = sorted(qualified, key=lambda o: -gains[o][0])
    policies = []
    for n in sorted({min(size, len(ranked)) for size in CREDIT_SIZES} - {0}):
        subs = tuple(SubPolicy((Gene(op, CREDIT_PROBABILITY, 1.0),)) for op in ranked[:n])
        name = "evoaug credit: " + ", ".join(ranked[:n])
        policies.append(
            Policy(subs, name=name, magnitude_sampling="uniform", interpolation=interpolation)
        )
    return policies, gains


def coverage_policy(
    evidence: Mapping[str, Evidence],
    *,
    confidence: float = 0.9,
    interpolation: Interpolation = "bilinear",
    exclude: Collection[str] = (),
) -> tuple[Policy | None, dict[str, tuple[float, float]]]:
    """The op whose images cover the group left behind, more than the other groups.

    For each op, the coverage gain (``Evidence.coverage``: how much closer its images bring the
    training probe to each validation image) of the worst group's images minus the other
    groups', with a lower confidence bound. An op that turns training images into what the
    group left behind looks like (an inversion for an inverted minority, a flip for upside-down
    photos) covers that group specifically; ops that help every image alike do not. This is
    the challenger for a group shift that gradient alignment, which sees what helps the next
    steps of every group, does not single out.

    Returns:
        ``(the best qualifying op at probability 1/2 as a policy, or None;
        {op: (specific gain, lower bound)})``.

    Example:
        >>> import numpy as np
        >>> groups = np.repeat([0, 1], 32)
        >>> flip = np.where(groups == 1, 0.3, 0.0) + 0.01 * np.sin(np.arange(64))
        >>> same = np.full(64, 0.1) + 0.01 * np.cos(np.arange(64))
        >>> ev = {op: Evidence(op_probe(op), None, None, groups, coverage=c, worst_group=1)
        ...       for op, c in (("VerticalFlip", flip), ("Rotate", same))}
        >>> coverage_policy(ev)[0].name
        'evoaug coverage: VerticalFlip'
    """
    z = NormalDist().inv_cdf(confidence)
    gains: dict[str, tuple[float, float]] = {}
    for op, ev in evidence.items():
        if not ev.ok or ev.coverage is None or ev.groups is None or ev.worst_group is None:
            continue
        worst = ev.groups == ev.worst_group
        inside, outside = ev.coverage[worst], ev.coverage[~worst]
        if len(inside) < 2 or len(outside) < 2:
            continue
        specific = float(inside.mean() - outside.mean())
        se = math.sqrt(inside.var(ddof=1) / len(inside) + outside.var(ddof=1) / len(outside))
        gains[op] = (specific, specific - z * se)
    qualified = [op for op, (_, low) in gains.items() if low > 0 and op not in exclude]
    if not qualified:
        return None, gains
    op = max(qualified, key=lambda o: gains[o][0])
    gene = Gene(op, CREDIT_PROBABILITY, 1.0)
    policy = Policy(
        (SubPolicy((gene,)),),
        name=f"evoaug coverage: {op}",
        magnitude_sampling="uniform",
        interpolation=interpolation,
    )
    return policy, gains


def credit_ops(ops: Sequence[str]) -> list[str]:
    """The ops worth scoring alone: every op but ``Identity`` (the clean image is the baseline)."""
    return [op for op in ops if op != "Identity"]
