"""The chosen policy: from ``best_policy.yaml``, else the last policy of ``timeline.jsonl``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from evoaug.exceptions import ConfigError, UnknownOpError
from evoaug.ops import get_op
from evoaug.policy import Policy
from evoaug.report._load import RunData, policy_dict

__all__ = ["ChosenPolicy", "chosen_policy"]

_PLUS_MINUS = "\u00b1"


@dataclass(frozen=True)
class ChosenPolicy:
    """The policy training ended with, as a dict (always) and a :class:`Policy` (when loadable).

    ``source`` is the file it came from; ``policy`` is ``None`` when an op is not registered in
    this process (a custom op), which rules out the sample grid but not the table.
    """

    data: dict[str, Any]
    source: str
    policy: Policy | None

    @property
    def name(self) -> str:
        """The policy's name, or ``"unnamed"``."""
        name = self.data.get("name")
        return str(name) if name else "unnamed"

    def rows(self) -> list[dict[str, str]]:
        """One row per gene: sub-policy, op, probability, level, magnitude (as text)."""
        out = []
        for k, sub in enumerate(self.data.get("sub_policies", []), start=1):
            for gene in sub:
                op, level = str(gene["op"]), float(gene["level"])
                try:
                    spec = get_op(op)
                except UnknownOpError:
                    magnitude = "n/a (op not registered here)"
                else:
                    magnitude = (
                        f"{_PLUS_MINUS if spec.signed else ''}{spec.magnitude(level):.4g}"
                        if spec.has_magnitude
                        else "none"
                    )
                out.append(
                    {
                        "sub_policy": str(k),
                        "op": op,
                        "probability": f"{float(gene['probability']):.2f}",
                        "level": f"{level:.3f}",
                        "magnitude": magnitude,
                    }
                )
        return out

    def to_yaml(self) -> str:
        """The policy file's text."""
        if self.policy is not None:
            return self.policy.to_yaml()
        return yaml.safe_dump(self.data, sort_keys=False, default_flow_style=None)


def chosen_policy(run: RunData, notes: list[str]) -> ChosenPolicy | None:
    """The policy training ended with, or ``None`` with a note."""
    data, source = run.best_policy, "best_policy.yaml"
    if data is None:
        policies = [policy_dict(r.get("policy")) for r in run.timeline]
        valid = [p for p in policies if p is not None]
        data, source = (valid[-1], "timeline.jsonl") if valid else (None, "")
    if data is None:
        notes.append("No chosen policy: no valid best_policy.yaml and no policy in timeline.jsonl.")
        return None
    try:
        policy: Policy | None = Policy.from_dict(data)
    except ConfigError as err:
        policy = None
        notes.append(f"The chosen policy cannot be applied in this process ({err}).")
    return ChosenPolicy(data=dict(data), source=source, policy=policy)
