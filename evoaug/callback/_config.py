"""Validation of :class:`~evoaug.EvoAugCallback` arguments (first phase: no Trainer needed)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from evoaug.callback._batch import DEFAULT_KEYS
from evoaug.exceptions import ConfigError
from evoaug.objectives import FAIRNESS_METRICS, available_objectives
from evoaug.pipeline import Normalize
from evoaug.policy import INTERPOLATIONS, Policy, presets

__all__ = [
    "DEFAULT_INITIAL_PRESETS",
    "DEFAULT_OBJECTIVES",
    "FAIRNESS_GROUPS",
    "MODES",
    "CallbackConfig",
]

DEFAULT_OBJECTIVES = ("accuracy", "difficulty", "diversity", "fairness")
DEFAULT_INITIAL_PRESETS = ("identity", "autoaugment-cifar10", "autoaugment-svhn")
MODES = ("batch", "dataset")
FAIRNESS_GROUPS = ("auto", "sensitive", "class")
Mode = Literal["batch", "dataset"]


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"`{name}` must be an int {bound}, got {value!r}")
    return value


def _choice(name: str, value: object, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ConfigError(f"`{name}` must be one of {list(allowed)}, got {value!r}")
    return str(value)


def _policy(name: str, value: object) -> Policy:
    if isinstance(value, Policy):
        return value
    if isinstance(value, str):
        if value in presets():
            return Policy.preset(value)
        if not value.strip().endswith((".yaml", ".yml", ".json")) and "\n" not in value:
            raise ConfigError(
                f"`{name}` must be a preset name {presets()} or a policy file "
                f"(.yaml/.yml/.json), got {value!r}"
            )
        if value.strip().endswith(".json") and "\n" not in value:
            return Policy.from_json(value)
        return Policy.from_yaml(value)
    raise ConfigError(
        f"`{name}` must be a Policy, a preset name ({presets()}) or a policy file, got {value!r}"
    )


def _normalize(value: object) -> Callable[[torch.Tensor], torch.Tensor] | str | None:
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
            raise ConfigError(f"`normalize` (mean, std): {err}") from None
    raise ConfigError(
        "`normalize` must be None, 'datamodule', a callable, (mean, std) or "
        "{'mean': ..., 'std': ...}, "
        f"got {value!r}"
    )


def _batch_keys(value: object) -> dict[str, int | str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"`batch_keys` must be a mapping like {{'image': 0, 'label': 1, 'group': 2}}, "
            f"got {value!r}"
        )
    unknown = sorted(str(k) for k in value if k not in DEFAULT_KEYS)
    if unknown:
        raise ConfigError(
            f"`batch_keys` accepts the keys {sorted(DEFAULT_KEYS)}, got unknown {unknown}"
        )
    for role, where in value.items():
        if isinstance(where, bool) or not isinstance(where, (int, str)):
            raise ConfigError(
                f"`batch_keys[{role!r}]` must be a position (int) or a key (str), got {where!r}"
            )
    return dict(value)


@dataclass
class CallbackConfig:
    """Validated arguments of :class:`~evoaug.EvoAugCallback`; see its docstring."""

    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    population_size: int = 16
    search_budget: float = 0.2
    every_n_epochs: int | None = None
    min_generations: int = 3
    warmup_epochs: int = 1
    lookahead_steps: int = 20
    lookahead_batch_size: int = 32
    lookahead_repeats: int = 1
    train_probe_size: int = 512
    val_probe_size: int = 256
    selection: Any = "weights"
    mode: Mode = "batch"
    fairness_groups: str = "auto"
    fairness_metric: str = "worst_group_accuracy"
    batch_keys: dict[str, int | str] = field(default_factory=dict)
    normalize: Callable[[torch.Tensor], torch.Tensor] | str | None = None
    search: bool = True
    loss_fn: Callable[..., torch.Tensor] | None = None
    initial_policy: Policy = field(default_factory=lambda: Policy.preset("identity"))
    initial_presets: tuple[str, ...] = DEFAULT_INITIAL_PRESETS
    n_subpolicies: int = 5
    n_genes: int = 2
    ops: tuple[str, ...] | None = None
    interpolation: str | None = None
    val_dataloader_idx: int = 0
    feature_layer: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        raw: object = self.objectives
        objectives = tuple(raw) if isinstance(raw, (tuple, list)) else ()
        if not objectives:
            raise ConfigError(
                f"`objectives` must be a non-empty sequence of names from "
                f"{available_objectives()}, got {self.objectives!r}"
            )
        for name in objectives:
            if name not in available_objectives():
                raise ConfigError(
                    f"`objectives` must name registered objectives {available_objectives()}, "
                    f"got unknown {name!r}"
                )
        if len(set(objectives)) != len(objectives):
            raise ConfigError(f"`objectives` must not repeat names, got {list(objectives)}")
        self.objectives = objectives
        _int("population_size", self.population_size, 4, 1024)
        budget = self.search_budget
        if (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float))
            or not (math.isfinite(budget) and 0.0 <= budget <= 10.0)
        ):
            raise ConfigError(f"`search_budget` must be a fraction in [0, 10], got {budget!r}")
        if self.every_n_epochs is not None:
            _int("every_n_epochs", self.every_n_epochs, 1)
        _int("min_generations", self.min_generations, 0)
        _int("warmup_epochs", self.warmup_epochs, 1)
        _int("lookahead_steps", self.lookahead_steps, 1)
        _int("lookahead_batch_size", self.lookahead_batch_size, 1)
        _int("lookahead_repeats", self.lookahead_repeats, 1)
        _int("train_probe_size", self.train_probe_size, self.lookahead_batch_size)
        _int("val_probe_size", self.val_probe_size, 2)
        self.mode = _choice("mode", self.mode, MODES)  # type: ignore[assignment]
        self.fairness_groups = _choice("fairness_groups", self.fairness_groups, FAIRNESS_GROUPS)
        self.fairness_metric = _choice("fairness_metric", self.fairness_metric, FAIRNESS_METRICS)
        self.batch_keys = _batch_keys(self.batch_keys)
        self.normalize = _normalize(self.normalize)
        if not isinstance(self.search, bool):
            raise ConfigError(f"`search` must be a bool, got {self.search!r}")
        if self.loss_fn is not None and not callable(self.loss_fn):
            raise ConfigError(f"`loss_fn` must be callable or None, got {self.loss_fn!r}")
        self.initial_policy = _policy("initial_policy", self.initial_policy)
        given = self.interpolation
        interpolation = _choice(
            "interpolation",
            self.initial_policy.interpolation if given is None else given,
            INTERPOLATIONS,
        )
        self.interpolation = interpolation
        if self.initial_policy.interpolation != interpolation:
            self.initial_policy = dataclasses.replace(
                self.initial_policy,
                interpolation=interpolation,  # type: ignore[arg-type]
            )
        raw_presets: object = self.initial_presets
        if not isinstance(raw_presets, (tuple, list)) or any(
            p not in presets() for p in raw_presets
        ):
            raise ConfigError(
                f"`initial_presets` must be a sequence of preset names from {presets()}, "
                f"got {self.initial_presets!r}"
            )
        self.initial_presets = tuple(self.initial_presets)
        _int("n_subpolicies", self.n_subpolicies, 1, 256)
        _int("n_genes", self.n_genes, 1, 4)
        raw_ops: object = self.ops
        if raw_ops is not None:
            if isinstance(raw_ops, str) or not isinstance(raw_ops, (tuple, list)):
                raise ConfigError(
                    f"`ops` must be None or a list of op names (see evoaug.available_ops()), "
                    f"got {raw_ops!r}"
                )
            self.ops = tuple(raw_ops)
        if self.feature_layer is not None and (
            not isinstance(self.feature_layer, str) or not self.feature_layer
        ):
            raise ConfigError(
                "`feature_layer` must be None or a module name from `model.named_modules()`, "
                f"got {self.feature_layer!r}"
            )
        _int("val_dataloader_idx", self.val_dataloader_idx, 0)
        _int("seed", self.seed, 0)
