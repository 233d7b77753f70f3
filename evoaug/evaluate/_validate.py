"""Argument checks for :class:`~evoaug.evaluate.Evaluator`: settings at construction, data per call.

Everything here runs before any work, so a bad argument never costs a look-ahead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from evoaug._checks import check_int
from evoaug._probe import Probe
from evoaug.evaluate._optim import OptimizerSpec
from evoaug.exceptions import ConfigError, InputError
from evoaug.objectives import (
    FAIRNESS_METRICS,
    Objective,
    available_objectives,
    check_estimator,
    get_objective,
)
from evoaug.policy import Policy

__all__ = ["check_call", "check_labels", "check_settings", "feature_module_name"]


def check_settings(
    *,
    objectives: Sequence[str],
    lookahead_steps: int,
    batch_size: int,
    recalibrate_bn: bool,
    recalibration_size: int,
    feature_layer: str | None,
    fairness_metric: str,
    normalize: Callable[..., Any] | None,
    difficulty_size: int,
    diversity_size: int,
    vectorize: object,
    repeats: int,
    estimator: str = "lookahead",
    alignment_size: int = 256,
) -> dict[str, Objective]:
    """Validate the Evaluator's settings; return the objective instances by name."""
    check_int("repeats", repeats, low=1)
    if not isinstance(vectorize, bool) and vectorize != "auto":
        raise ConfigError(f"`vectorize` must be True, False or 'auto', got {vectorize!r}")
    check_int("lookahead_steps", lookahead_steps, low=0)
    check_int("batch_size", batch_size, low=1)
    check_int("recalibration_size", recalibration_size, low=1)
    check_int("difficulty_size", difficulty_size, low=1)
    check_int("diversity_size", diversity_size, low=2)
    check_int("alignment_size", alignment_size, low=1)
    check_estimator(estimator)
    if not isinstance(recalibrate_bn, bool):
        raise ConfigError(f"`recalibrate_bn` must be a bool, got {recalibrate_bn!r}")
    if feature_layer is not None and (not isinstance(feature_layer, str) or not feature_layer):
        raise ConfigError(
            f"`feature_layer` must be None or a module name from `model.named_modules()`, "
            f"got {feature_layer!r}"
        )
    if fairness_metric not in FAIRNESS_METRICS:
        raise ConfigError(
            f"`fairness_metric` must be one of {FAIRNESS_METRICS}, got {fairness_metric!r}"
        )
    if normalize is not None and not callable(normalize):
        raise ConfigError(f"`normalize` must be None or a callable, got {normalize!r}")
    if isinstance(objectives, str) or not isinstance(objectives, Sequence) or not objectives:
        raise ConfigError(
            f"`objectives` must be a non-empty sequence of names from {available_objectives()}, "
            f"got {objectives!r}"
        )
    options: dict[str, dict[str, Any]] = {
        "accuracy": {"estimator": estimator, "size": alignment_size},
        "difficulty": {"size": difficulty_size},
        "diversity": {"size": diversity_size},
        "fairness": {"metric": fairness_metric, "estimator": estimator, "size": alignment_size},
    }
    built: dict[str, Objective] = {}
    for name in objectives:
        if not isinstance(name, str):
            raise ConfigError(f"`objectives` must hold names (str), got {name!r}")
        if name in built:
            raise ConfigError(f"`objectives` must not repeat names, got {name!r} twice")
        built[name] = get_objective(name, **options.get(name, {}))
    return built


def feature_module_name(model: nn.Module, feature_layer: str | None) -> str | None:
    """The module whose input gives diversity features: ``feature_layer``, else the last Linear.

    Returns ``None`` (pixel space) when no layer is named and the model has no ``nn.Linear``.

    Raises:
        ConfigError: ``feature_layer`` is not a module of ``model``.

    """
    names = [name for name, _ in model.named_modules() if name]
    if feature_layer is not None:
        if feature_layer not in names:
            shown = ", ".join(repr(n) for n in names[-20:])
            raise ConfigError(
                f"`feature_layer` must name a module of the model, got {feature_layer!r}; "
                f"its modules include {shown}"
            )
        return feature_layer
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linear[-1] if linear else None


def _probe(name: str, probe: object, batch_size: int) -> Probe:
    if not isinstance(probe, Probe):
        raise InputError(f"`{name}` must be an evoaug.evaluate.Probe, got {type(probe).__name__}")
    if len(probe) < batch_size:
        raise ConfigError(
            f"`{name}` must hold at least `batch_size` = {batch_size} images, got {len(probe)}; "
            "draw a larger probe or lower `batch_size`"
        )
    return probe


def check_call(
    model: object,
    loss_fn: object,
    optimizer: object,
    train_probe: object,
    val_probe: object,
    policies: object,
    seed: object,
    *,
    objectives: Mapping[str, Objective],
    batch_size: int,
    lookahead_steps: int,
    feature_layer: str | None,
) -> None:
    """Validate one ``evaluate()`` call's arguments before any work.

    The keyword arguments are the Evaluator's validated settings the call is checked against.
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise ConfigError(f"`loss_fn` must be callable (outputs, labels) -> loss, got {loss_fn!r}")
    if not isinstance(optimizer, OptimizerSpec):
        raise ConfigError(
            f"`optimizer` must be an OptimizerSpec (use `OptimizerSpec.from_optimizer(opt)`), "
            f"got {type(optimizer).__name__}"
        )
    train = _probe("train_probe", train_probe, batch_size)
    val = _probe("val_probe", val_probe, batch_size)
    if isinstance(policies, (str, Policy)) or not isinstance(policies, Sequence):
        raise ConfigError(f"`policies` must be a sequence of Policy, got {type(policies).__name__}")
    for i, policy in enumerate(policies):
        if not isinstance(policy, Policy):
            raise ConfigError(f"`policies[{i}]` must be a Policy, got {type(policy).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"`seed` must be an int >= 0, got {seed!r}")
    for objective in objectives.values():
        objective.check(train, val)
    feature_module_name(model, feature_layer)
    uses_lookahead = any(o.uses_lookahead for o in objectives.values())
    if uses_lookahead and lookahead_steps and not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(
            "the look-ahead needs trainable parameters, but every parameter of `model` has "
            "requires_grad=False; drop 'accuracy' and 'fairness' from `objectives`"
        )


def check_labels(outputs: object, probes: dict[str, Probe]) -> None:
    """Labels must index the model's outputs: ``[0, C)`` for logits ``[N, C]``, {0, 1} for ``[N]``.

    ``outputs`` is the model's output on a probe image. Checked once per ``evaluate()`` call, so
    a label the model cannot predict is one clear error instead of a failure of every candidate
    deep inside the loss.

    Raises:
        InputError: A probe holds a label outside that range.

    """
    if not isinstance(outputs, torch.Tensor):
        return  # not logits: the loss function knows what the labels mean
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        classes = 2
    elif outputs.ndim == 2:
        classes = int(outputs.shape[1])
    else:
        return  # not logits: the loss function knows what the labels mean
    for name, probe in probes.items():
        low, high = (int(v) for v in torch.aminmax(probe.labels))
        if low < 0 or high >= classes:
            raise InputError(
                f"`{name}` labels must be class indices in [0, {classes - 1}] for a model with "
                f"{classes} outputs, got labels in [{low}, {high}]; check the dataset's labels "
                "and the model's number of classes"
            )
