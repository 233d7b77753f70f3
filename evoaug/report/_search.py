"""What the search did, from ``history.jsonl``, ``pareto.yaml`` and ``timeline.jsonl``.

**Hypervolume, recomputed.** For each generation g, the hypervolume of every finite candidate
evaluated up to g (the archive) in a normalized space: objectives are negated (pymoo minimizes),
then shifted and scaled so that the best value in the whole history is 0 and the worst is 1, and
the reference point is 1.1 on every axis (so values lie in ``[0, 1.1^m]`` for m objectives).
The archive's hypervolume never falls; the callback's logged value (``timeline.jsonl``) is that of
the current population and can. Candidates of different generations were scored on different
weights of the training model, so both curves describe the search, not a fixed benchmark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

__all__ = ["HV_REFERENCE", "SearchSummary", "summarize_search"]

HV_REFERENCE = 1.1


@dataclass(frozen=True)
class SearchSummary:
    """The search's history as arrays (objectives higher-better, NaN for failures).

    ``values[i]`` holds candidate i's objectives in the order of ``objectives``;
    ``generation[i]`` its generation; ``front`` the rows of the final front (from
    ``pareto.yaml``, else the non-dominated finite candidates of the whole history);
    ``hypervolume`` the recomputed archive hypervolume per generation in ``generations``;
    ``logged_hypervolume`` the ``(generation, value)`` pairs of ``timeline.jsonl``.
    """

    objectives: tuple[str, ...]
    values: np.ndarray
    generation: np.ndarray
    failures: Counter[str]
    front: np.ndarray
    front_from_file: bool
    generations: tuple[int, ...]
    hypervolume: tuple[float, ...]
    logged_hypervolume: tuple[tuple[int, float], ...]

    @property
    def finite(self) -> np.ndarray:
        """Mask of the candidates with a finite value on every objective (none without any)."""
        if not self.objectives:
            return np.zeros(self.values.shape[0], dtype=bool)
        return np.asarray(np.all(np.isfinite(self.values), axis=1))

    @property
    def n_candidates(self) -> int:
        """Number of evaluated candidates."""
        return int(self.values.shape[0])

    @property
    def n_failed(self) -> int:
        """Number of candidates that failed (scored worst)."""
        return int(sum(self.failures.values()))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (without the per-candidate arrays)."""
        return {
            "objectives": list(self.objectives),
            "candidates": self.n_candidates,
            "generations": len(self.generations),
            "failed": self.n_failed,
            "failure_reasons": dict(self.failures.most_common(10)),
            "front_size": int(self.front.shape[0]),
            "front_source": "pareto.yaml" if self.front_from_file else "history",
            "hypervolume": [
                {"generation": g, "archive": v}
                for g, v in zip(self.generations, self.hypervolume, strict=True)
            ],
            "logged_hypervolume": [
                {"generation": g, "population": v} for g, v in self.logged_hypervolume
            ],
        }


def _float(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return float("nan")


def _int(value: object) -> int:
    number = _float(value)
    return int(number) if np.isfinite(number) else 0


def summarize_search(
    history: Sequence[Mapping[str, Any]],
    *,
    objectives: Sequence[str] = (),
    pareto: Sequence[Mapping[str, Any]] | None = None,
    timeline: Sequence[Mapping[str, Any]] = (),
) -> SearchSummary | None:
    """Summarize the history; ``None`` when it has no candidate.

    Args:
        history: Records of ``history.jsonl``.
        objectives: Objective names in the configured order (``run.json``); names found only in
            the history follow in order of appearance.
        pareto: Entries of ``pareto.yaml`` (``{"objectives": {...}}``), if read.
        timeline: Records of ``timeline.jsonl``.

    """
    if not history:
        return None
    found: list[str] = []
    for record in history:
        values = record.get("objectives")
        if isinstance(values, Mapping):
            found.extend(str(k) for k in values if str(k) not in found)
    # configured order first, then names only the history has; never a name no record has
    names = [n for n in dict.fromkeys(str(o) for o in objectives) if n in found]
    names += [n for n in found if n not in names]
    values = np.full((len(history), len(names)), np.nan)
    generation = np.zeros(len(history), dtype=np.int64)
    failures: Counter[str] = Counter()
    for i, record in enumerate(history):
        generation[i] = _int(record.get("generation"))
        objs = record.get("objectives")
        if isinstance(objs, Mapping):
            values[i] = [_float(objs.get(n)) for n in names]
        if record.get("failure") or not np.all(np.isfinite(values[i])):
            failures[str(record.get("failure") or "non-finite objective")] += 1
            values[i] = np.nan
    finite = np.all(np.isfinite(values), axis=1) & bool(names)
    front_from_file = False
    if pareto and names:  # (no objective in the history: nothing to read the front by)
        front = np.array(
            [[_float(e.get("objectives", {}).get(n)) for n in names] for e in pareto]
        ).reshape(-1, len(names))
        front = front[np.all(np.isfinite(front), axis=1)]
        front_from_file = True
    else:
        front = _non_dominated(values[finite])
    generations, hv = _archive_hypervolume(values, generation, finite)
    logged: dict[int, float] = {}
    for record in timeline:
        value = _float(record.get("hypervolume"))
        if np.isfinite(value) and _int(record.get("generation")) > 0:
            logged[_int(record.get("generation")) - 1] = value
    return SearchSummary(
        objectives=tuple(names),
        values=values,
        generation=generation,
        failures=failures,
        front=front,
        front_from_file=front_from_file,
        generations=generations,
        hypervolume=hv,
        logged_hypervolume=tuple(sorted(logged.items())),
    )


def _non_dominated(points: np.ndarray) -> np.ndarray:
    """Rows of ``points`` (higher-better) that no other row dominates."""
    if points.shape[0] == 0:
        return points
    keep = NonDominatedSorting().do(-points, only_non_dominated_front=True)
    return points[np.sort(np.asarray(keep, dtype=np.int64))]


def _archive_hypervolume(
    values: np.ndarray, generation: np.ndarray, finite: np.ndarray
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Hypervolume of the archive after each generation (see the module docstring)."""
    gens = tuple(int(g) for g in np.unique(generation))
    if not np.any(finite):
        return gens, tuple(0.0 for _ in gens)
    minimized = -values[finite]
    ideal, nadir = minimized.min(axis=0), minimized.max(axis=0)
    scale = np.where(nadir > ideal, nadir - ideal, 1.0)
    indicator = HV(ref_point=np.full(values.shape[1], HV_REFERENCE))
    out = []
    for g in gens:
        archive = values[finite & (generation <= g)]
        if archive.shape[0] == 0:
            out.append(0.0)
            continue
        normalized = (-_non_dominated(archive) - ideal) / scale
        out.append(float(indicator(normalized)))
    return gens, tuple(out)
