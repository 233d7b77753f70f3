"""Plain-value encoding of search state: what ``Search.state_dict`` is made of.

A state dict holds only ``int``, ``float``, ``str``, ``bool``, ``None``, lists and dicts with
string keys, so both ``json`` and ``torch.load(weights_only=True)`` accept it and a canonical JSON
dump gives a checksum that is equal on every rank exactly when the states are equal. Non-finite
floats (crowding distances are ``inf`` at the ends of a front) are stored as the strings
``"inf"``, ``"-inf"`` and ``"nan"``, so the JSON stays standard.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evoaug.exceptions import ConfigError

if TYPE_CHECKING:
    from evoaug.search._search import Search

__all__ = [
    "STATE_VERSION",
    "canonical_json",
    "check_keys",
    "decode_array",
    "decode_float",
    "encode_array",
    "encode_float",
    "load_search_state",
    "search_state",
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


def _config(search: Search) -> dict[str, Any]:
    space = search.space
    space_config: dict[str, Any] = {
        "ops": list(space.ops),
        "n_subpolicies": space.n_subpolicies,
        "n_genes": space.n_genes,
        "magnitude_sampling": space.magnitude_sampling,
    }
    if space.interpolation != "bilinear":  # states of bilinear searches predate the key
        space_config["interpolation"] = space.interpolation
    return {
        "algorithm": type(search._algorithm).__name__,
        "objectives": list(search.objectives),
        "space": space_config,
        "population_size": search.population_size,
        "n_offsprings": search.n_offsprings,
    }


def search_state(search: Search) -> dict[str, Any]:
    """``Search.state_dict``: configuration, population, pending genomes, RNG and history."""
    algorithm = search._algorithm
    X, F, failed = search._arrays()
    pop = algorithm.pop if len(X) else []
    ranks = [ind.get("rank") for ind in pop]
    crowding = [ind.get("crowding") for ind in pop]
    ideal, scale = search._hv_ideal, search._hv_scale
    return {
        "version": STATE_VERSION,
        **_config(search),
        "seed": search.seed,
        "generation": search.generation,
        "n_eval": search.n_eval,
        "population": {
            "X": encode_array(X),
            "F": encode_array(F),
            "failed": [bool(b) for b in failed],
            "rank": [None if r is None else int(r) for r in ranks],
            "crowding": [encode_float(c) for c in crowding],
        },
        "pending": None if search._pending is None else encode_array(search._pending),
        "rng": _plain(algorithm.random_state.bit_generator.state),
        "seen_low": encode_array(search._seen_low),
        "seen_high": encode_array(search._seen_high),
        "hypervolume": {
            "history": [float(v) for v in search.hypervolume_history],
            "ideal": None if ideal is None else encode_array(ideal),
            "scale": None if scale is None else encode_array(scale),
        },
    }


_STATE_KEYS = (
    "version", "algorithm", "objectives", "space", "population_size", "n_offsprings", "seed",
    "generation", "n_eval", "population", "pending", "rng", "seen_low", "seen_high",
    "hypervolume",
)  # fmt: skip


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"search state `{where}` must be an int >= 0, got {value!r}")
    return value


def load_search_state(search: Search, state: object) -> None:
    """``Search.load_state_dict``: validate everything, then apply it."""
    from pymoo.core.population import Population

    if not isinstance(state, Mapping):
        raise ConfigError(f"search state must be a mapping, got {type(state).__name__}")
    check_keys(state, _STATE_KEYS, "search state")
    if state["version"] != STATE_VERSION:
        raise ConfigError(
            f"search state `version` must be {STATE_VERSION}, got {state['version']!r}"
        )
    for key, value in _config(search).items():
        if state[key] != value:
            raise ConfigError(
                f"cannot load search state: `{key}` was {state[key]!r} when it was saved, but "
                f"this search has {value!r}; build the Search with the same configuration"
            )
    dim, m = search.space.dim, len(search.objectives)
    generation = _count(state["generation"], "generation")
    n_eval, seed = _count(state["n_eval"], "n_eval"), _count(state["seed"], "seed")
    pop = state["population"]
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
    if (generation == 0) != (len(X) == 0):
        raise ConfigError(
            f"search state has {len(X)} individuals at `generation` {generation}; only "
            "generation 0 has an empty population"
        )
    pending = None
    if state["pending"] is not None:
        pending = decode_array(state["pending"], "pending", (None, dim))
    seen_low = decode_array(state["seen_low"], "seen_low", (m,))
    seen_high = decode_array(state["seen_high"], "seen_high", (m,))
    hv = state["hypervolume"]
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

    algorithm = search._algorithm
    try:
        np.random.default_rng().bit_generator.state = dict(state["rng"])  # validate first
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError(f"search state `rng` is not a numpy generator state: {err}") from err

    # Everything validated: apply.
    algorithm.random_state.bit_generator.state = dict(state["rng"])
    if generation > 0:
        population = Population.new(X=X, F=F)
        for individual, fail, rank, crowd in zip(population, failed, ranks, crowding, strict=True):
            individual.set("failed", fail)
            if rank is not None:
                individual.set("rank", rank)
            if crowd is not None:
                individual.set("crowding", crowd)
        algorithm.pop = population
        algorithm.is_initialized = True
        algorithm.n_iter = generation + 1
    else:
        algorithm.is_initialized = False
        if pending is not None:
            algorithm._initialize()  # what the first ask did before the state was saved
    algorithm.termination.force_termination = False
    search.seed = seed  # the RNG state carries on from the saved seed
    search.generation, search.n_eval = generation, n_eval
    search._pending = pending
    search._seen_low, search._seen_high = seen_low, seen_high
    search.hypervolume_history = history
    search._hv_ideal, search._hv_scale = ideal, scale
