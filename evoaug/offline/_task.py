"""The unit of work a runner ships to a worker: one candidate, as plain values, and its result.

A :class:`LowerLevel` is any picklable callable ``lower(policy, seed=...) -> {objective: value}``
with an ``objectives`` attribute: :class:`~evoaug.offline.RecipeTrainer` (train a fresh model
from a recipe) or :class:`~evoaug.offline.SyntheticObjectives` (a cheap stand-in). Workers call
:func:`evaluate_task`, which never raises for a candidate's own failure: an exception or a
non-finite value becomes a ``failure`` string, and the search scores that candidate worst. An
exception that reaches the runner instead (the worker died, the cluster lost a node) means the
evaluation did not happen; the candidate is re-queued.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from evoaug.policy import Policy

__all__ = ["LowerLevel", "candidate_id", "evaluate_task", "failure_result"]


@runtime_checkable
class LowerLevel(Protocol):
    """What the offline search needs from its lower level.

    Attributes:
        objectives: Names of the objectives ``__call__`` returns, all "higher is better".

    """

    objectives: tuple[str, ...]

    def __call__(self, policy: Policy, *, seed: int) -> Mapping[str, float]:
        """Score ``policy`` (e.g. train a fresh model with it); raise or return NaN on failure."""
        ...


def candidate_id(generation: int, index: int) -> str:
    """The id a candidate keeps in ``history.jsonl`` and across restarts: ``g0003-c007``.

    Example:
        >>> candidate_id(3, 7)
        'g0003-c007'

    """
    return f"g{generation:04d}-c{index:03d}"


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def failure_result(task: Mapping[str, Any], failure: str, seconds: float = 0.0) -> dict[str, Any]:
    """The result of a candidate that could not be scored."""
    return {
        "candidate": task["candidate"],
        "objectives": None,
        "failure": failure,
        "seconds": float(seconds),
        "worker": None,
    }


def evaluate_task(lower: LowerLevel, task: Mapping[str, Any]) -> dict[str, Any]:
    """Score one task (``{"candidate", "policy", "seed", ...}``) in a worker; plain values out.

    Returns:
        ``{"candidate", "objectives", "failure", "seconds", "worker"}``: ``objectives`` maps
        each of ``lower.objectives`` to a finite float, or is ``None`` with ``failure`` set.

    Example:
        >>> from evoaug.offline import SyntheticObjectives
        >>> task = {"candidate": "g0000-c000", "seed": 0,
        ...         "policy": Policy.preset("identity").to_dict()}
        >>> result = evaluate_task(SyntheticObjectives(noise=0.0), task)
        >>> result["failure"], sorted(result["objectives"])
        (None, ['accuracy', 'difficulty', 'diversity', 'fairness'])

    """
    start = time.perf_counter()
    try:
        policy = Policy.from_dict(task["policy"])
        values = lower(policy, seed=int(task["seed"]))
        objectives = {name: float(values[name]) for name in lower.objectives}
    except Exception as err:  # the candidate's own failure: scored worst, never retried
        return failure_result(task, f"{type(err).__name__}: {err}", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    bad = sorted(name for name, value in objectives.items() if not math.isfinite(value))
    if bad:
        return failure_result(task, f"non-finite objective values: {bad}", seconds)
    return {
        "candidate": task["candidate"],
        "objectives": objectives,
        "failure": None,
        "seconds": seconds,
        "worker": _worker_name(),
    }
