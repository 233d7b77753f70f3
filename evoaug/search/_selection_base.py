"""The base of selection strategies: validation and normalization of a Pareto front.

A front is a list of ``(policy, objectives)`` pairs as :meth:`Search.pareto_front` returns, with
objective values "higher is better". :meth:`Selection.select` validates it, builds the
normalized matrix (per objective, the front's lowest value maps to 0 and its highest to 1; an
objective on which every member is equal maps to 0 and cannot decide anything) and hands it to
the strategy.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evoaug.exceptions import ConfigError

__all__ = ["TIE", "Selection", "check_weights", "first_best"]

TIE = 1e-12  # scores this close count as equal


def _objectives_of(item: object, i: int) -> Mapping[str, Any]:
    objectives = item if isinstance(item, Mapping) else None
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], Mapping):
        objectives = item[1]
    if objectives is None:
        raise ConfigError(
            f"`front[{i}]` must be a (policy, objectives) pair or a mapping of objectives, "
            f"got {type(item).__name__}"
        )
    return objectives


def check_weights(name: str, weights: object) -> dict[str, float]:
    """``weights`` as a dict of finite floats, or a ConfigError naming ``name``."""
    if not isinstance(weights, Mapping) or not weights:
        raise ConfigError(
            f"`{name}` must be a non-empty mapping of objective names to numbers, got {weights!r}"
        )
    out = {}
    for key, value in weights.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ConfigError(f"`{name}[{key!r}]` must be a finite number, got {value!r}")
        out[str(key)] = float(value)
    return out


class Selection(abc.ABC):
    """Base class: :meth:`select` validates and normalizes, subclasses implement ``_select``.

    Subclasses implement ``_select(normalized, raw, names) -> int`` on two ``[n, m]`` matrices
    (normalized to ``[0, 1]`` and as given, both higher is better), and may override
    :meth:`validate` to check the objective names early.
    """

    def validate(self, objectives: Sequence[str]) -> None:  # noqa: B027 (optional hook)
        """Check that this strategy can work with ``objectives``; raise ConfigError if not."""

    def select(self, front: Sequence[Any]) -> int:
        """Index in ``front`` of the member to train next.

        Args:
            front: ``(policy, objectives)`` pairs (or plain objective mappings), all with the same
                objective names and finite values.

        Raises:
            ConfigError: An empty front, mismatched names or non-finite values, or objectives
                the strategy needs that the front lacks.

        """
        if isinstance(front, (str, bytes, Mapping)) or not isinstance(front, Sequence) or not front:
            raise ConfigError(
                f"`front` must be a non-empty sequence of (policy, objectives), got {front!r}"
            )
        rows = [_objectives_of(item, i) for i, item in enumerate(front)]
        names = tuple(rows[0])
        for i, row in enumerate(rows):
            if set(row) != set(names):
                raise ConfigError(
                    f"`front[{i}]` has objectives {sorted(row)}, but `front[0]` has {sorted(names)}"
                )
        self.validate(names)
        raw = np.array([[float(row[n]) for n in names] for row in rows], dtype=np.float64)
        if not np.all(np.isfinite(raw)):
            raise ConfigError(
                "`front` objective values must be finite; failed candidates are never on a front"
            )
        low, span = raw.min(axis=0), np.ptp(raw, axis=0)
        normalized = np.where(span > 0, (raw - low) / np.where(span > 0, span, 1.0), 0.0)
        index = int(self._select(normalized, raw, names))
        return index

    @abc.abstractmethod
    def _select(self, normalized: np.ndarray, raw: np.ndarray, names: tuple[str, ...]) -> int:
        """The chosen row; ``normalized`` and ``raw`` are ``[n, m]``, higher is better."""


def first_best(score: np.ndarray, tiebreak: np.ndarray | None = None) -> int:
    """Index of the highest score; ties (within 1e-12) go to the highest tiebreak, then first."""
    best = np.flatnonzero(score >= score.max() - TIE)
    if tiebreak is not None and len(best) > 1:
        best = best[tiebreak[best] >= tiebreak[best].max() - TIE]
    return int(best[0])
