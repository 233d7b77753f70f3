"""Reference networks by name, for recipes and ``Classifier(model=...)``."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from evoaug.exceptions import ConfigError
from evoaug.models._resnet import ResNet18
from evoaug.models._small_cnn import SmallCNN
from evoaug.models._wide_resnet import WideResNet

__all__ = [
    "MODELS",
    "available_models",
    "build_model",
    "check_model_arguments",
    "check_model_kwargs",
]


def _wrn(depth: int, widen_factor: int) -> Callable[..., nn.Module]:
    def factory(in_channels: int = 3, num_classes: int = 10, dropout: float = 0.0) -> WideResNet:
        return WideResNet(
            depth=depth,
            widen_factor=widen_factor,
            in_channels=in_channels,
            num_classes=num_classes,
            dropout=dropout,
        )

    factory.__name__ = factory.__qualname__ = f"wrn_{depth}_{widen_factor}"
    factory.__doc__ = f"WRN-{depth}-{widen_factor}: :class:`WideResNet` with fixed depth and width."
    return factory


MODELS: dict[str, Callable[..., nn.Module]] = {
    "small-cnn": SmallCNN,
    "resnet18": ResNet18,
    "wide-resnet": WideResNet,
    "wrn-16-4": _wrn(16, 4),
    "wrn-28-10": _wrn(28, 10),
    "wrn-40-2": _wrn(40, 2),
}
"""Name -> network factory. Every factory accepts ``in_channels`` and ``num_classes``.

Add an entry to make your own network buildable by name (e.g. from a recipe's
``model: my-net``); the factory must return an ``nn.Module`` mapping images to logits.
"""


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted.

    Example:
        >>> available_models()
        ['resnet18', 'small-cnn', 'wide-resnet', 'wrn-16-4', 'wrn-28-10', 'wrn-40-2']

    """
    return sorted(MODELS)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """A fresh network registered in :data:`MODELS` under ``name``.

    Args:
        name: A name from :func:`available_models`.
        **kwargs: Passed to the factory, e.g. ``in_channels``, ``num_classes``, ``width``.

    Returns:
        The network, mapping images ``[B, C, H, W]`` to logits ``[B, num_classes]``.

    Raises:
        ConfigError: Unknown name (the message lists the available ones), an argument the
            factory does not take (the message lists those it takes) or a value out of range.

    Example:
        >>> net = build_model("wrn-16-4", num_classes=100)
        >>> net.fc.out_features
        100

    """
    factory = check_model_arguments(name, kwargs)
    return factory(**kwargs)


def check_model_arguments(name: str, kwargs: dict[str, Any]) -> Callable[..., nn.Module]:
    """The factory of ``name`` after checking that it accepts ``kwargs``; see :func:`build_model`.

    Raises:
        ConfigError: Unknown name or an argument the factory does not take.

    """
    factory = MODELS.get(name) if isinstance(name, str) else None
    if factory is None:
        close = difflib.get_close_matches(str(name), list(MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown model {name!r}.{hint} Available models: {available_models()}")
    signature = inspect.signature(factory)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        accepted = list(signature.parameters)
        raise ConfigError(
            f"model {name!r} takes the arguments {accepted}, got {sorted(kwargs)}: {err}"
        ) from err
    return factory


def check_model_kwargs(
    model: str, model_kwargs: dict[str, Any] | None, network: nn.Module | None
) -> dict[str, Any]:
    """The checked ``model_kwargs`` of ``Classifier(model=..., model_kwargs=..., network=...)``.

    Raises:
        ConfigError: ``network`` is not a module, ``model_kwargs`` come with ``network``, set
            ``num_classes``/``in_channels``, or do not fit the model; or an unknown model.

    """
    if network is not None:
        if not isinstance(network, nn.Module):
            raise ConfigError(f"`network` must be a torch.nn.Module or None, got {network!r}")
        if model_kwargs:
            raise ConfigError(
                f"`model_kwargs` apply to `model` and must be None with `network`, got "
                f"{model_kwargs!r}"
            )
        return {}
    if not isinstance(model_kwargs, (dict, type(None))):
        raise ConfigError(f"`model_kwargs` must be a dict or None, got {model_kwargs!r}")
    kwargs = dict(model_kwargs or {})
    reserved = sorted({"num_classes", "in_channels"} & set(kwargs))
    if reserved:
        raise ConfigError(
            f"`model_kwargs` must not set {reserved}: pass them as Classifier arguments"
        )
    check_model_arguments(model, {**kwargs, "num_classes": 2, "in_channels": 1})
    return kwargs
