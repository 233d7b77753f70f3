"""Checking what a Search is given: objectives, initial policies, an algorithm, tell results."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evoaug.exceptions import ConfigError
from evoaug.genome import GenomeSpace
from evoaug.policy import Policy
from evoaug.search._operators import PolicyDuplicateElimination

__all__ = [
    "check_algorithm",
    "check_objectives",
    "encode_initial",
    "failure_penalty",
    "parse_results",
]


def check_objectives(objectives: object) -> tuple[str, ...]:
    """Objective names as a tuple: at least one, strings, no repeats."""
    if isinstance(objectives, (str, bytes)) or not isinstance(objectives, Sequence):
        raise ConfigError(f"`objectives` must be a sequence of objective names, got {objectives!r}")
    names = tuple(objectives)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"`objectives` must hold at least one non-empty name, got {names!r}")
    if len(set(names)) != len(names):
        raise ConfigError(f"`objectives` must not repeat names, got {list(names)}")
    return names


def parse_results(
    results: object, objectives: tuple[str, ...], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Minimization matrix ``[n, m]`` (NaN rows for failures) and the failure mask."""
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise ConfigError(
            "`results` must be a sequence with one mapping of objective values (or None) "
            f"per asked candidate, got {type(results).__name__}"
        )
    if len(results) != n:
        raise ConfigError(
            f"`results` must hold one entry per asked candidate: expected {n}, got {len(results)}"
        )
    F = np.full((n, len(objectives)), np.nan)
    for i, result in enumerate(results):
        if result is None:
            continue
        if not isinstance(result, Mapping):
            raise ConfigError(
                f"`results[{i}]` must be a mapping of objective values or None, got "
                f"{type(result).__name__}"
            )
        missing = [name for name in objectives if name not in result]
        if missing:
            raise ConfigError(
                f"`results[{i}]` is missing objectives {missing}; expected "
                f"{list(objectives)}, got {sorted(map(str, result))}"
            )
        for j, name in enumerate(objectives):
            value = result[name]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"`results[{i}][{name!r}]` must be a real number, got {value!r}")
            F[i, j] = -float(value)
    failed = ~np.all(np.isfinite(F), axis=1)
    return F, failed


def failure_penalty(seen_low: np.ndarray, seen_high: np.ndarray) -> np.ndarray:
    """The minimization value given to a failed candidate, per objective.

    ``highest + max(1, highest - lowest)`` over the finite values seen so far (NaN where none has
    been seen, which scores 0): strictly worse than every finite value seen.
    """
    spread = np.maximum(1.0, seen_high - seen_low)
    return np.where(np.isnan(seen_high), 0.0, seen_high + spread)


def check_algorithm(algorithm: Any, population_size: int, n_offsprings: int | None) -> None:
    """An injected algorithm must be a pymoo GeneticAlgorithm of the search's sizes."""
    from pymoo.algorithms.base.genetic import GeneticAlgorithm

    if not isinstance(algorithm, GeneticAlgorithm):
        raise ConfigError(
            "`algorithm` must be a pymoo GeneticAlgorithm such as NSGA2, got "
            f"{type(algorithm).__name__}"
        )
    if algorithm.pop_size != population_size:
        raise ConfigError(
            f"`population_size`={population_size} does not match the `algorithm`'s "
            f"pop_size={algorithm.pop_size}; pass the same value to both"
        )
    if n_offsprings is not None and n_offsprings != algorithm.n_offsprings:
        raise ConfigError(
            f"`n_offsprings`={n_offsprings} does not match the `algorithm`'s "
            f"n_offsprings={algorithm.n_offsprings}; set it on the algorithm only"
        )


def encode_initial(space: GenomeSpace, policies: object, population_size: int) -> np.ndarray:
    """Genomes of ``policies`` (validated, duplicates dropped), shape ``[n, space.dim]``."""
    if isinstance(policies, (str, Policy)) or not isinstance(policies, Sequence):
        raise ConfigError(
            f"`initial_policies` must be a sequence of evoaug.Policy, got {policies!r}"
        )
    if len(policies) > population_size:
        raise ConfigError(
            f"`initial_policies` holds {len(policies)} policies, more than "
            f"`population_size`={population_size}"
        )
    rows = []
    for i, policy in enumerate(policies):
        if not isinstance(policy, Policy):
            raise ConfigError(
                f"`initial_policies[{i}]` must be an evoaug.Policy, got {type(policy).__name__}"
            )
        try:
            rows.append(space.encode(policy))
        except ConfigError as err:
            raise ConfigError(f"`initial_policies[{i}]` does not fit `space`: {err}") from err
    X = np.array(rows, dtype=np.float64).reshape(len(rows), space.dim)
    earlier = np.triu(PolicyDuplicateElimination(space).matches(X, X), k=1)
    keep: np.ndarray = X[~np.any(earlier, axis=0)]
    return keep
