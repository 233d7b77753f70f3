"""Features of a policy that do not depend on how its genome is laid out.

The surrogate regresses objectives on them; the synthetic lower level defines its objectives
with them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evoaug.policy import Policy

__all__ = ["op_usage"]


def op_usage(policy: Policy, ops: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """How much a policy uses each op: expected firings per image and mean level when it fires.

    A sub-policy is drawn uniformly, so op ``o`` fires ``rate[o] = (1/K) sum p`` times per image
    on average (the sum runs over the genes with op ``o``); ``level[o]`` is the
    probability-weighted mean level of those genes (0 where the op is absent). Both are invariant
    to the order of sub-policies and genes, which makes them better regression features than the
    raw genome.

    Returns:
        ``(rate, level)``, two arrays of length ``len(ops)``; ops outside ``ops`` are ignored.

    Example:
        >>> from evoaug import Gene, Policy, SubPolicy
        >>> policy = Policy((SubPolicy((Gene("Invert", 1.0, 0.0),)),
        ...                  SubPolicy((Gene("Rotate", 0.5, 0.8),))))
        >>> rate, level = op_usage(policy, ["Invert", "Rotate", "Zoom"])
        >>> rate.tolist(), level.tolist()
        ([0.5, 0.25, 0.0], [0.0, 0.8, 0.0])

    """
    index = {name: i for i, name in enumerate(ops)}
    rate = np.zeros(len(ops))
    weighted = np.zeros(len(ops))
    k = len(policy.sub_policies)
    for sub in policy:
        for gene in sub:
            i = index.get(gene.op)
            if i is None:
                continue
            rate[i] += gene.probability / k
            weighted[i] += gene.probability * gene.level / k
    level = np.divide(weighted, rate, out=np.zeros(len(ops)), where=rate > 0)
    return rate, level
