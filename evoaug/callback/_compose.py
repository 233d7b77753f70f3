"""Policies the decision composes: challengers added to the incumbent, and policy keys.

A credit or coverage challenger proposes ops to add to the policy that trains
(:func:`added`); the regularizer keeps only what the search space allows (:func:`within`) and
is sized to the probes' images (:func:`sized`); refused challengers and the regularizer's
trial are remembered by their genes (:func:`policy_key`), whatever their names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from evoaug.exceptions import ConfigError
from evoaug.policy import Policy, SubPolicy, presets

__all__ = ["added", "policy_key", "sized", "within"]


def added(incumbent: Policy, policy: Policy) -> Policy:
    """``policy``'s genes added to the incumbent's: each sub-policy after each of the incumbent's.

    Identity genes are dropped; what helped stays. A credit or coverage policy proposes ops to
    add, not a policy to replace the incumbent with: a look-ahead from a model trained on the
    incumbent does not see what dropping it would lose later.
    """
    if set(incumbent.ops) <= {"Identity"}:
        return policy
    keep = [tuple(g for g in sub.genes if g.op != "Identity") for sub in incumbent.sub_policies]
    subs = tuple(SubPolicy(k + tuple(sub.genes)) for k in keep for sub in policy.sub_policies)
    added = policy.name.split(": ", 1)[-1] if policy.name else "custom"
    return dataclasses.replace(
        incumbent, sub_policies=subs, name=f"{incumbent.name or 'custom'} + {added}"
    )


def within(policy: Policy | None, ops: Sequence[str]) -> Policy | None:
    """``policy``'s sub-policies whose ops the search space has (``None`` if none is left).

    A search limited to some ops (the ``ops`` setting) is offered no regularizer op beyond them.
    """
    if policy is None:
        return None
    allowed = {*ops, "Identity"}
    subs = tuple(sub for sub in policy.sub_policies if set(sub.ops) <= allowed)
    if len(subs) == len(policy.sub_policies):
        return policy
    if all(set(sub.ops) <= {"Identity"} for sub in subs):
        return None
    return dataclasses.replace(policy, sub_policies=subs)


def sized(policy: Policy, image_size: int) -> Policy:
    """A preset built with its default image size, rebuilt at the probes' (else ``policy``)."""
    name = policy.name
    if name not in presets() or policy != Policy.preset(name, interpolation=policy.interpolation):
        return policy  # a custom policy, as given
    try:
        return Policy.preset(name, image_size=image_size, interpolation=policy.interpolation)
    except ConfigError:  # the preset takes no image size
        return policy


def policy_key(policy: Policy) -> str:
    """A policy's genes as text: equal genes, equal keys, whatever the name."""
    return "|".join(
        ";".join(f"{g.op}:{g.probability:.4f}:{g.level:.4f}" for g in sub.genes)
        for sub in policy.sub_policies
    )
