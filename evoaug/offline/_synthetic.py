"""A cheap, deterministic stand-in for the lower level: objectives computed from a policy's ops.

It lets the offline search, its runners and its surrogate be exercised (tests, benchmarks, a
first try of a cluster set-up) in milliseconds per candidate instead of a training run.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

import numpy as np

from evoaug.exceptions import ConfigError
from evoaug.offline._features import op_usage
from evoaug.ops import BUILTIN_OPS
from evoaug.policy import Policy

__all__ = ["SYNTHETIC_OBJECTIVES", "SyntheticObjectives"]

SYNTHETIC_OBJECTIVES = ("accuracy", "difficulty", "diversity", "fairness")


class SyntheticObjectives:
    """Synthetic lower level: the four objectives as a smooth function of op usage, plus noise.

    Every built-in op gets hidden coefficients drawn from ``problem_seed``: how much it helps
    accuracy near its best level, how strong it is, how much it helps the worst group.
    ``Identity`` does nothing. With ``strength = sum rate * s * (0.25 + 0.75 level)``:

    - difficulty = strength; diversity = ``tanh(sum rate * v * (0.5 + level))``;
    - accuracy = ``0.8 + 0.1 sum rate * h * (1 - 2 |level - t|) - 0.08 strength^2``;
    - fairness = ``accuracy - 0.15 + 0.1 sum rate * f * level - 0.05 strength^2``.

    So accuracy trades off against difficulty and diversity, as real augmentation does. Gaussian
    noise (standard deviation ``noise``) is drawn from a hash of the policy and ``seed``: the same
    policy and seed always give the same values, in any process.

    Args:
        objectives: Which of ``accuracy``, ``difficulty``, ``diversity``, ``fairness`` to return.
        noise: Standard deviation of the noise added to every objective.
        problem_seed: Seed of the hidden coefficients (another seed, another problem).

    Raises:
        ConfigError: An unknown objective or a negative ``noise``.

    Example:
        >>> from evoaug import Policy
        >>> lower = SyntheticObjectives(objectives=("accuracy", "diversity"), noise=0.0)
        >>> lower(Policy.preset("identity"), seed=0)
        {'accuracy': 0.8, 'diversity': 0.0}

    """

    def __init__(
        self,
        objectives: Sequence[str] = SYNTHETIC_OBJECTIVES,
        *,
        noise: float = 0.01,
        problem_seed: int = 0,
    ) -> None:
        names = tuple(objectives)
        unknown = [n for n in names if n not in SYNTHETIC_OBJECTIVES]
        if not names or unknown or len(set(names)) != len(names):
            raise ConfigError(
                f"`objectives` must be distinct names from {list(SYNTHETIC_OBJECTIVES)}, "
                f"got {list(names)!r}"
            )
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
            raise ConfigError(f"`noise` must be a number >= 0, got {noise!r}")
        self.objectives = names
        self.noise = float(noise)
        self.problem_seed = int(problem_seed)
        self.ops = tuple(BUILTIN_OPS)
        rng = np.random.default_rng(self.problem_seed)
        n = len(self.ops)
        self._helps = rng.uniform(-1.0, 1.0, n)
        self._target = rng.uniform(0.1, 0.9, n)
        self._strength = rng.uniform(0.2, 1.0, n)
        self._variety = rng.uniform(0.2, 1.0, n)
        self._fair = rng.uniform(-1.0, 1.0, n)
        if "Identity" in self.ops:
            i = self.ops.index("Identity")
            for table in (self._helps, self._strength, self._variety, self._fair):
                table[i] = 0.0

    def clean(self, policy: Policy) -> dict[str, float]:
        """The objectives without noise."""
        rate, level = op_usage(policy, self.ops)
        strength = float(np.sum(rate * self._strength * (0.25 + 0.75 * level)))
        fit = 1.0 - 2.0 * np.abs(level - self._target)
        accuracy = 0.8 + 0.1 * float(np.sum(rate * self._helps * fit)) - 0.08 * strength**2
        values = {
            "accuracy": accuracy,
            "difficulty": strength,
            "diversity": math.tanh(float(np.sum(rate * self._variety * (0.5 + level)))),
            "fairness": accuracy
            - 0.15
            + 0.1 * float(np.sum(rate * self._fair * level))
            - 0.05 * strength**2,
        }
        return {name: round(values[name], 12) for name in self.objectives}

    def __call__(self, policy: Policy, *, seed: int) -> dict[str, float]:
        """The objectives of ``policy`` with the noise of (``policy``, ``seed``)."""
        values = self.clean(policy)
        if self.noise == 0.0:
            return values
        key = json.dumps([policy.to_dict(), int(seed), self.problem_seed], sort_keys=True)
        digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        noise = np.random.default_rng(digest).normal(0.0, self.noise, len(values))
        return {name: v + float(e) for (name, v), e in zip(values.items(), noise, strict=True)}

    def __repr__(self) -> str:
        return (
            f"SyntheticObjectives(objectives={self.objectives}, noise={self.noise}, "
            f"problem_seed={self.problem_seed})"
        )
