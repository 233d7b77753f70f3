"""The callback's settings, validated once (first phase: nothing here needs a Trainer).

:class:`~evoaug.EvoAugCallback`'s signature declares each setting's name, type and default (the
signature LightningCLI reads) and its docstring documents them. :class:`CallbackConfig` holds the
validated values under the same names, in the same order (a test keeps the two equal):
:meth:`CallbackConfig.from_arguments` takes the callback's arguments as they came, :data:`_CHECKS`
validates each, and :meth:`CallbackConfig.record` is what ``run.json`` stores. Nothing else lists
the settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from evoaug._checks import check_choice, check_int, check_number
from evoaug.callback._batch import DEFAULT_KEYS
from evoaug.exceptions import ConfigError
from evoaug.objectives import ESTIMATORS, FAIRNESS_METRICS, available_objectives
from evoaug.pipeline import Normalize
from evoaug.policy import INTERPOLATIONS, Policy, presets, resolve_policy
from evoaug.search import Selection, get_selection

__all__ = [
    "DECISIONS",
    "DEFAULT_INITIAL_PRESETS",
    "DEFAULT_OBJECTIVES",
    "FAIRNESS_GROUPS",
    "MODES",
    "CallbackConfig",
    "resolve_normalize",
]

DEFAULT_OBJECTIVES = ("accuracy", "difficulty", "diversity", "fairness")
DEFAULT_INITIAL_PRESETS = ("identity", "autoaugment-cifar10", "autoaugment-svhn")
MODES = ("batch", "dataset")
DECISIONS = ("evidence", "front")
FAIRNESS_GROUPS = ("auto", "sensitive", "class")
Mode = Literal["batch", "dataset"]
Normalizer = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class CallbackConfig:
    """:class:`~evoaug.EvoAugCallback`'s settings, validated; see its docstring for each.

    Build it with :meth:`from_arguments`. Values are normalized: sequences become tuples,
    ``initial_policy`` a :class:`~evoaug.Policy` (with the ``interpolation`` setting applied),
    ``selection`` a :class:`~evoaug.search.Selection`, ``normalize`` a callable, ``None`` or
    ``"datamodule"``, ``interpolation`` the resolved name.

    Example:
        >>> from evoaug import EvoAugCallback
        >>> config = EvoAugCallback(population_size=8, ops=["Invert", "Rotate"]).config
        >>> config.population_size, config.ops, config.initial_policy.name
        (8, ('Invert', 'Rotate'), 'identity')
    """

    objectives: tuple[str, ...]
    population_size: int
    search_budget: float
    every_n_epochs: int | None
    min_generations: int
    patience: int | None
    warmup_epochs: int
    lookahead_steps: int
    lookahead_batch_size: int
    lookahead_repeats: int
    train_probe_size: int
    val_probe_size: int
    selection: Selection
    mode: Mode
    fairness_groups: str
    fairness_metric: str
    estimator: str
    decision: str
    confidence: float
    guard_margin: float
    guard_repeats: int
    credit: bool
    regularizer: Policy | None
    regularize_at: float
    regularize_gap: float
    batch_keys: Mapping[str, int | str]
    normalize: Normalizer | str | None
    loss_fn: Callable[..., torch.Tensor] | None
    search: bool
    initial_policy: Policy
    initial_presets: tuple[str, ...]
    n_subpolicies: int
    n_genes: int
    ops: tuple[str, ...] | None
    interpolation: str
    val_dataloader_idx: int
    feature_layer: str | None
    seed: int

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> CallbackConfig:
        """Validate the callback's arguments (every field, by name).

        Raises:
            ConfigError: A value is invalid; the message names the argument, what is allowed
                and what was given.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        values = {name: _CHECKS[name](name, arguments[name]) for name in names}
        for probe in ("train_probe_size", "val_probe_size"):  # a look-ahead batch each
            check_int(probe, values[probe], low=values["lookahead_batch_size"])
        given = values["interpolation"]
        interpolation = values["initial_policy"].interpolation if given is None else given
        values["interpolation"] = interpolation
        for name in ("initial_policy", "regularizer"):  # both train with the setting's
            policy: Policy | None = values[name]
            if policy is not None and policy.interpolation != interpolation:
                values[name] = dataclasses.replace(policy, interpolation=interpolation)
        values["selection"].validate(values["objectives"])
        return cls(**values)

    def record(self) -> dict[str, Any]:
        """The settings as ``run.json`` records them (plain values; objects by their repr)."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        record["initial_policy"] = self.initial_policy.name or "custom"
        if self.regularizer is not None:
            record["regularizer"] = self.regularizer.name or "custom"
        record["selection"] = repr(self.selection)
        return record


def resolve_normalize(value: Normalizer | str | None, trainer: Any) -> Normalizer | None:
    """The ``normalize`` setting once the Trainer is known (``"datamodule"`` resolved).

    Raises:
        ConfigError: ``"datamodule"`` and the attached datamodule has no ``normalization``.
    """
    if not isinstance(value, str):
        return value
    stats = getattr(getattr(trainer, "datamodule", None), "normalization", None)
    if stats is None:
        raise ConfigError(
            "`normalize='datamodule'` needs a datamodule with a `normalization` attribute "
            "((mean, std) per channel); pass `normalize=(mean, std)` instead"
        )
    return Normalize(*stats)


# ---------------------------------------------------------------- one check per setting


def _objectives(name: str, value: object) -> tuple[str, ...]:
    names = tuple(value) if isinstance(value, (tuple, list)) else ()
    if not names:
        raise ConfigError(
            f"`{name}` must be a non-empty sequence of names from {available_objectives()}, "
            f"got {value!r}"
        )
    for objective in names:
        if objective not in available_objectives():
            raise ConfigError(
                f"`{name}` must name registered objectives {available_objectives()}, "
                f"got unknown {objective!r}"
            )
    if len(set(names)) != len(names):
        raise ConfigError(f"`{name}` must not repeat names, got {list(names)}")
    return names


def _normalize(name: str, value: object) -> Normalizer | str | None:
    if value is None or callable(value) or value == "datamodule":
        return value
    pair = None
    if isinstance(value, Mapping) and set(value) == {"mean", "std"}:
        pair = value["mean"], value["std"]
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = value[0], value[1]
    if pair is not None:
        try:
            return Normalize(*pair)
        except ConfigError as err:
            raise ConfigError(f"`{name}` (mean, std): {err}") from None
    raise ConfigError(
        f"`{name}` must be None, 'datamodule', a callable, (mean, std) or "
        f"{{'mean': ..., 'std': ...}}, got {value!r}"
    )


def _batch_keys(name: str, value: object) -> dict[str, int | str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"`{name}` must be a mapping like {{'image': 0, 'label': 1, 'group': 2}}, got {value!r}"
        )
    unknown = sorted(str(k) for k in value if k not in DEFAULT_KEYS)
    if unknown:
        raise ConfigError(
            f"`{name}` accepts the keys {sorted(DEFAULT_KEYS)}, got unknown {unknown}"
        )
    for role, where in value.items():
        if isinstance(where, bool) or not isinstance(where, (int, str)):
            raise ConfigError(
                f"`{name}[{role!r}]` must be a position (int) or a key (str), got {where!r}"
            )
    return dict(value)


def _presets(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, (tuple, list)) or any(p not in presets() for p in value):
        raise ConfigError(
            f"`{name}` must be a sequence of preset names from {presets()}, got {value!r}"
        )
    return tuple(value)


def _ops(name: str, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise ConfigError(
            f"`{name}` must be None or a list of op names (see evoaug.available_ops()), "
            f"got {value!r}"
        )
    return tuple(value)


def _selection(name: str, value: object) -> Selection:
    if value is not None and not isinstance(value, (str, Selection)):
        raise ConfigError(
            f"`{name}` must be a name ('weights', 'knee', 'constraint') or a Selection, "
            f"got {value!r}"
        )
    return get_selection(value)


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"`{name}` must be a bool, got {value!r}")
    return value


def _optional(check: Callable[[str, object], Any]) -> Callable[[str, object], Any]:
    return lambda name, value: None if value is None else check(name, value)


def _callable(name: str, value: object) -> Callable[..., torch.Tensor] | None:
    if value is not None and not callable(value):
        raise ConfigError(f"`{name}` must be callable or None, got {value!r}")
    return value


def _module_name(name: str, value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(
            f"`{name}` must be None or a module name from `model.named_modules()`, got {value!r}"
        )
    return value


def _ints(low: int, high: int | None = None) -> Callable[[str, object], int]:
    return lambda name, value: check_int(name, value, low=low, high=high)


def _choices(allowed: Sequence[str]) -> Callable[[str, object], str]:
    return lambda name, value: check_choice(name, value, allowed)


_CHECKS: dict[str, Callable[[str, object], Any]] = {
    "objectives": _objectives,
    "population_size": _ints(4, 1024),
    "search_budget": lambda name, value: check_number(name, value, low=0.0, high=10.0),
    "every_n_epochs": _optional(_ints(1)),
    "min_generations": _ints(0),
    "patience": _optional(_ints(1)),
    "warmup_epochs": _ints(1),
    "lookahead_steps": _ints(1),
    "lookahead_batch_size": _ints(1),
    "lookahead_repeats": _ints(1),
    "train_probe_size": _ints(1),
    "val_probe_size": _ints(2),
    "selection": _selection,
    "mode": _choices(MODES),
    "fairness_groups": _choices(FAIRNESS_GROUPS),
    "fairness_metric": _choices(FAIRNESS_METRICS),
    "estimator": _choices(ESTIMATORS),
    "decision": _choices(DECISIONS),
    "confidence": lambda name, value: check_number(
        name, value, low=0.5, high=1.0, low_open=True, high_open=True
    ),
    "guard_margin": lambda name, value: check_number(name, value, low=0.0, high=1.0),
    "guard_repeats": _ints(1, 16),
    "credit": _bool,
    "regularizer": _optional(lambda name, value: resolve_policy(value, argument=name)),
    "regularize_at": lambda name, value: check_number(
        name, value, low=0.5, high=1.0, low_open=True
    ),
    "regularize_gap": lambda name, value: check_number(
        name, value, low=0.0, high=1.0, high_open=True
    ),
    "batch_keys": _batch_keys,
    "normalize": _normalize,
    "loss_fn": _callable,
    "search": _bool,
    "initial_policy": lambda name, value: resolve_policy(value, argument=name),
    "initial_presets": _presets,
    "n_subpolicies": _ints(1, 256),
    "n_genes": _ints(1, 4),
    "ops": _ops,
    "interpolation": _optional(_choices(INTERPOLATIONS)),
    "val_dataloader_idx": _ints(0),
    "feature_layer": _module_name,
    "seed": _ints(0),
}
