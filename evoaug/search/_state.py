"""Plain-value encoding of search state: what ``Search.state_dict`` is made of.

A state dict holds only ``int``, ``float``, ``str``, ``bool``, ``None``, lists and dicts with
string keys, so both ``json`` and ``torch.load(weights_only=True)`` accept it and a canonical JSON
dump gives a checksum that is equal on every rank exactly when the states are equal. Non-finite
floats (crowding distances are ``inf`` at the ends of a front) are stored as the strings
``"inf"``, ``"-inf"`` and ``"nan"``, so the JSON stays standard.

:class:`SearchSnapshot` is a search's state as validated Python and NumPy values:
:meth:`SearchSnapshot.to_state` encodes it and :meth:`SearchSnapshot.from_state` validates and
decodes a raw state. Nothing here touches a :class:`~evoaug.search.Search`: the search builds its
snapshot from its own attributes and applies a decoded one itself.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.genome import GenomeSpace

__all__ = [
    "STATE_VERSION",
    "SearchSnapshot",
    "canonical_json",
    "check_keys",
    "decode_array",
    "decode_float",
    "encode_array",
    "encode_float",
    "search_config",
    "sha256",
]

STATE_VERSION = 1
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def encode_float(value: float | None) -> float | str | None:
    """A float as itself when finite, else ``"inf"`` / ``"-inf"`` / ``"nan"``; ``None`` stays."""
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def decode_float(value: object, where: str) -> float:
    """Inverse of :func:`encode_float` (``None`` is not accepted here)."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"search state `{where}` must hold numbers, got {value!r}")
    return float(value)


def encode_array(array: np.ndarray) -> list[Any]:
    """A float array as nested lists of :func:`encode_float` values."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 0:
        raise ConfigError("encode_array needs at least one dimension")
    if a.ndim == 1:
        return [encode_float(v) for v in a.tolist()]
    return [encode_array(row) for row in a]


def decode_array(data: object, where: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Nested lists back to a ``float64`` array of ``shape`` (``None`` = any length)."""
    if not isinstance(data, list):
        raise ConfigError(f"search state `{where}` must be a list, got {type(data).__name__}")

    def convert(item: object, depth: int) -> Any:
        if depth == len(shape) - 1:
            if not isinstance(item, list):
                raise ConfigError(f"search state `{where}` has a malformed row: {item!r}")
            return [decode_float(v, where) for v in item]
        if not isinstance(item, list):
            raise ConfigError(f"search state `{where}` has a malformed row: {item!r}")
        return [convert(v, depth + 1) for v in item]

    rows = convert(data, 0)
    if len(shape) == 2 and not rows:
        return np.zeros((0, shape[1] or 0))
    out = np.array(rows, dtype=np.float64)
    expected = tuple(s if s is not None else out.shape[i] for i, s in enumerate(shape))
    if out.shape != expected:
        raise ConfigError(f"search state `{where}` must have shape {expected}, got {out.shape}")
    return out


def check_keys(state: Mapping[str, Any], required: Sequence[str], where: str) -> None:
    """Raise a :class:`~evoaug.ConfigError` listing the keys of ``required`` that are missing."""
    missing = [k for k in required if k not in state]
    if missing:
        raise ConfigError(f"{where} is missing keys {missing}; it has {sorted(map(str, state))}")


def canonical_json(state: Any) -> str:
    """Sorted keys, no whitespace, no NaN: the same state gives the same text on every rank."""
    try:
        return json.dumps(state, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"search state holds a value JSON cannot store: {err}") from err


def sha256(state: Any) -> str:
    """Hex SHA-256 of :func:`canonical_json` of ``state``."""
    return hashlib.sha256(canonical_json(state).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- Search state


def _plain(value: Any) -> Any:
    """Numpy scalars to Python ones, recursively (the RNG state is already plain)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def search_config(
    *,
    algorithm: str,
    objectives: Sequence[str],
    space: GenomeSpace,
    population_size: int,
    n_offsprings: int,
) -> dict[str, Any]:
    """The settings a state is only valid for, as stored in it (``algorithm`` is a class name)."""
    space_config: dict[str, Any] = {
        "ops": list(space.ops),
        "n_subpolicies": space.n_subpolicies,
        "n_genes": space.n_genes,
        "magnitude_sampling": space.magnitude_sampling,
    }
    if space.interpolation != "bilinear":  # states of bilinear searches predate the key
        space_config["interpolation"] = space.interpolation
    return {
        "algorithm": algorithm,
        "objectives": list(objectives),
        "space": space_config,
        "population_size": population_size,
        "n_offsprings": n_offsprings,
    }


_STATE_KEYS = (
    "version", "algorithm", "objectives", "space", "population_size", "n_offsprings", "seed",
    "generation", "n_eval", "population", "pending", "rng", "seen_low", "seen_high",
    "hypervolume",
)  # fmt: skip


def _count(value: object, where: str) -> int:
    try:
        return check_int(where, value, low=0)
    except ConfigError as err:
        raise ConfigError(f"search state {err}") from err


@dataclass(frozen=True, eq=False)
class SearchSnapshot:
    """A search's state as validated values: what ``state_dict`` encodes, ``load_state_dict`` reads.

    Attributes:
        config: :func:`search_config` of the search the state belongs to.
        seed: The seed the search was built with (its generator has moved on since).
        generation: Completed tells.
        n_eval: Candidates told so far.
        X: Population genomes ``[n, dim]`` (``n == 0`` exactly at generation 0).
        F: Population objectives ``[n, m]``, minimization form.
        failed: Whether each individual failed.
        rank: NSGA-II non-domination rank of each individual (``None`` where unset).
        crowding: NSGA-II crowding distance of each individual (``None`` where unset).
        pending: Genomes asked but not told yet ``[k, dim]``, or ``None``.
        rng: ``bit_generator.state`` of the search's ``numpy`` generator.
        seen_low: Lowest finite value seen per objective (NaN before any).
        seen_high: Highest finite value seen per objective (NaN before any).
        hypervolume_history: One hypervolume per tell.
        hypervolume_ideal: Shift of the normalized hypervolume space (``None`` until fixed).
        hypervolume_scale: Scale of the normalized hypervolume space, or ``None``.

    Example:
        >>> import numpy as np
        >>> from evoaug import GenomeSpace
        >>> space = GenomeSpace(ops=["Identity", "Invert"], n_subpolicies=1, n_genes=1)
        >>> config = search_config(algorithm="NSGA2", objectives=["a"], space=space,
        ...                        population_size=4, n_offsprings=4)
        >>> snapshot = SearchSnapshot(
        ...     config=config, seed=0, generation=0, n_eval=0, X=np.zeros((0, 3)),
        ...     F=np.zeros((0, 1)), failed=[], rank=[], crowding=[], pending=None,
        ...     rng=np.random.default_rng(0).bit_generator.state, seen_low=np.full(1, np.nan),
        ...     seen_high=np.full(1, np.nan), hypervolume_history=[], hypervolume_ideal=None,
        ...     hypervolume_scale=None)
        >>> state = snapshot.to_state()
        >>> state["seen_low"], state["pending"]
        (['nan'], None)
        >>> SearchSnapshot.from_state(state, config=config, dim=3, n_objectives=1).generation
        0

    """

    config: dict[str, Any]
    seed: int
    generation: int
    n_eval: int
    X: np.ndarray
    F: np.ndarray
    failed: list[bool]
    rank: list[int | None]
    crowding: list[float | None]
    pending: np.ndarray | None
    rng: dict[str, Any]
    seen_low: np.ndarray
    seen_high: np.ndarray
    hypervolume_history: list[float]
    hypervolume_ideal: np.ndarray | None
    hypervolume_scale: np.ndarray | None

    def to_state(self) -> dict[str, Any]:
        """The state dict: plain values only (``json`` and ``weights_only`` safe)."""
        ideal, scale = self.hypervolume_ideal, self.hypervolume_scale
        return {
            "version": STATE_VERSION,
            **self.config,
            "seed": self.seed,
            "generation": self.generation,
            "n_eval": self.n_eval,
            "population": {
                "X": encode_array(self.X),
                "F": encode_array(self.F),
                "failed": [bool(b) for b in self.failed],
                "rank": [None if r is None else int(r) for r in self.rank],
                "crowding": [encode_float(c) for c in self.crowding],
            },
            "pending": None if self.pending is None else encode_array(self.pending),
            "rng": _plain(self.rng),
            "seen_low": encode_array(self.seen_low),
            "seen_high": encode_array(self.seen_high),
            "hypervolume": {
                "history": [float(v) for v in self.hypervolume_history],
                "ideal": None if ideal is None else encode_array(ideal),
                "scale": None if scale is None else encode_array(scale),
            },
        }

    @classmethod
    def from_state(
        cls, state: object, *, config: Mapping[str, Any], dim: int, n_objectives: int
    ) -> SearchSnapshot:
        """Validate a raw state against the search that loads it, and decode it.

        Args:
            state: What ``state_dict`` returned, possibly through ``json`` or ``torch.load``.
            config: :func:`search_config` of the loading search; the state's must be equal.
            dim: Genome length of the loading search's space.
            n_objectives: Number of objectives of the loading search.

        Returns:
            The decoded snapshot (with ``config`` as given).

        Raises:
            ConfigError: The state is malformed, of another version, or from a search with
                another configuration.

        """
        if not isinstance(state, Mapping):
            raise ConfigError(f"search state must be a mapping, got {type(state).__name__}")
        check_keys(state, _STATE_KEYS, "search state")
        if state["version"] != STATE_VERSION:
            raise ConfigError(
                f"search state `version` must be {STATE_VERSION}, got {state['version']!r}"
            )
        for key, value in config.items():
            if state[key] != value:
                raise ConfigError(
                    f"cannot load search state: `{key}` was {state[key]!r} when it was saved, "
                    f"but this search has {value!r}; build the Search with the same configuration"
                )
        generation = _count(state["generation"], "generation")
        n_eval, seed = _count(state["n_eval"], "n_eval"), _count(state["seed"], "seed")
        X, F, failed, rank, crowding = _population(state["population"], dim, n_objectives)
        if (generation == 0) != (len(X) == 0):
            raise ConfigError(
                f"search state has {len(X)} individuals at `generation` {generation}; only "
                "generation 0 has an empty population"
            )
        pending = None
        if state["pending"] is not None:
            pending = decode_array(state["pending"], "pending", (None, dim))
        seen_low = decode_array(state["seen_low"], "seen_low", (n_objectives,))
        seen_high = decode_array(state["seen_high"], "seen_high", (n_objectives,))
        history, ideal, scale = _hypervolume(state["hypervolume"], n_objectives)
        try:
            np.random.default_rng().bit_generator.state = dict(state["rng"])
        except (TypeError, ValueError, KeyError) as err:
            raise ConfigError(f"search state `rng` is not a numpy generator state: {err}") from err
        return cls(
            config=dict(config), seed=seed, generation=generation, n_eval=n_eval, X=X, F=F,
            failed=failed, rank=rank, crowding=crowding, pending=pending, rng=dict(state["rng"]),
            seen_low=seen_low, seen_high=seen_high, hypervolume_history=history,
            hypervolume_ideal=ideal, hypervolume_scale=scale,
        )  # fmt: skip


def _population(
    pop: object, dim: int, m: int
) -> tuple[np.ndarray, np.ndarray, list[bool], list[int | None], list[float | None]]:
    if not isinstance(pop, Mapping):
        raise ConfigError(f"search state `population` must be a mapping, got {pop!r}")
    check_keys(pop, ("X", "F", "failed", "rank", "crowding"), "search state `population`")
    X = decode_array(pop["X"], "population.X", (None, dim))
    F = decode_array(pop["F"], "population.F", (len(X), m))
    extras = {k: pop[k] for k in ("failed", "rank", "crowding")}
    for key, values in extras.items():
        if not isinstance(values, list) or len(values) != len(X):
            raise ConfigError(
                f"search state `population.{key}` must be a list of {len(X)} values, got {values!r}"
            )
    failed = [bool(v) for v in extras["failed"]]
    ranks = [None if r is None else _count(r, "population.rank") for r in extras["rank"]]
    crowding = [None if c is None else decode_float(c, "crowding") for c in extras["crowding"]]
    return X, F, failed, ranks, crowding


def _hypervolume(hv: object, m: int) -> tuple[list[float], np.ndarray | None, np.ndarray | None]:
    if not isinstance(hv, Mapping):
        raise ConfigError(f"search state `hypervolume` must be a mapping, got {hv!r}")
    check_keys(hv, ("history", "ideal", "scale"), "search state `hypervolume`")
    if not isinstance(hv["history"], list):
        raise ConfigError(
            f"search state `hypervolume.history` must be a list, got {hv['history']!r}"
        )
    history = [decode_float(v, "hypervolume.history") for v in hv["history"]]
    ideal = None if hv["ideal"] is None else decode_array(hv["ideal"], "hypervolume.ideal", (m,))
    scale = None if hv["scale"] is None else decode_array(hv["scale"], "hypervolume.scale", (m,))
    return history, ideal, scale
