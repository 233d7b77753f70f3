"""OptimizerSpec: the optimizer type and current hyper-parameters the look-ahead reproduces."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from evoaug._checks import check_number
from evoaug.exceptions import ConfigError

__all__ = ["OPTIMIZERS", "OptimizerSpec"]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw", "rmsprop")


def _number(name: str, value: object, *, high: float = math.inf) -> float:
    """A non-negative rate, also from the one-element tensor a scheduler may store."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = float(value.item())
    return check_number(name, value, low=0.0, high=high, high_open=True)


@dataclass(frozen=True)
class OptimizerSpec:
    """A plain-value description of an optimizer; :meth:`build` makes a fresh one.

    The look-ahead starts every candidate from a fresh optimizer (no momentum or Adam moments)
    of the training optimizer's type at its *current* learning rate.

    Args:
        name: One of :data:`OPTIMIZERS`: ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``.
        lr: Learning rate.
        momentum: SGD / RMSprop momentum.
        weight_decay: Weight decay (decoupled for ``"adamw"``).
        betas: Adam / AdamW coefficients.
        nesterov: SGD Nesterov momentum (needs ``momentum > 0``).
        note: Why the spec differs from the optimizer it was read from, if it does.

    Raises:
        ConfigError: Unknown name or a value out of range.

    Example:
        >>> import torch
        >>> spec = OptimizerSpec("sgd", lr=0.1, momentum=0.9)
        >>> type(spec.build(torch.nn.Linear(2, 1).parameters())).__name__
        'SGD'

    """

    name: str
    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    nesterov: bool = False
    note: str | None = None

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ConfigError(f"`name` must be one of {OPTIMIZERS}, got {self.name!r}")
        object.__setattr__(self, "lr", _number("lr", self.lr))
        object.__setattr__(self, "momentum", _number("momentum", self.momentum))
        object.__setattr__(self, "weight_decay", _number("weight_decay", self.weight_decay))
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ConfigError(f"`betas` must be a pair of numbers in [0, 1), got {self.betas!r}")
        betas = tuple(_number("betas", b, high=1.0) for b in self.betas)
        object.__setattr__(self, "betas", betas)
        if not isinstance(self.nesterov, bool):
            raise ConfigError(f"`nesterov` must be a bool, got {self.nesterov!r}")
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ConfigError(
                f"`nesterov=True` needs `name='sgd'` and `momentum > 0`, got name={self.name!r} "
                f"and momentum={self.momentum}"
            )

    @classmethod
    def from_optimizer(cls, optimizer: torch.optim.Optimizer) -> OptimizerSpec:
        """Read the type and the *current* hyper-parameters of ``param_groups[0]``.

        Learning-rate schedulers write the current rate into the param groups, so this reads the
        rate in effect now. SGD, Adam, AdamW and RMSprop map directly (``Adam`` with
        ``decoupled_weight_decay=True`` maps to ``"adamw"``); any other optimizer falls back to
        SGD at its learning rate, explained in :attr:`note`.

        Raises:
            ConfigError: ``optimizer`` is not a torch optimizer or has no ``lr``.

        Example:
            >>> import torch
            >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
            >>> OptimizerSpec.from_optimizer(opt).name
            'adamw'

        """
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ConfigError(
                f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        group: dict[str, Any] = optimizer.param_groups[0]
        if "lr" not in group:
            raise ConfigError(
                f"`optimizer` ({type(optimizer).__name__}) has no `lr` in its param groups"
            )
        lr, wd = group["lr"], group.get("weight_decay", 0.0)
        if isinstance(optimizer, torch.optim.SGD):
            return cls(
                "sgd",
                lr,
                momentum=group.get("momentum", 0.0),
                weight_decay=wd,
                nesterov=bool(group.get("nesterov", False)),
            )
        if isinstance(optimizer, torch.optim.AdamW) or (
            isinstance(optimizer, torch.optim.Adam) and group.get("decoupled_weight_decay", False)
        ):
            return cls("adamw", lr, weight_decay=wd, betas=tuple(group["betas"]))
        if isinstance(optimizer, torch.optim.Adam):
            return cls("adam", lr, weight_decay=wd, betas=tuple(group["betas"]))
        if isinstance(optimizer, torch.optim.RMSprop):
            return cls("rmsprop", lr, momentum=group.get("momentum", 0.0), weight_decay=wd)
        return cls(
            "sgd",
            lr,
            note=f"{type(optimizer).__name__} is not supported by the look-ahead; "
            "it uses plain SGD at the optimizer's current learning rate",
        )

    def build(self, params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
        """A fresh optimizer of this type over ``params``.

        Example:
            >>> import torch
            >>> OptimizerSpec("adam", lr=1e-3).build([torch.nn.Parameter(torch.zeros(1))])
            Adam (...)

        """
        params = list(params)
        if self.name == "sgd":
            return torch.optim.SGD(
                params,
                lr=self.lr,
                momentum=self.momentum,
                weight_decay=self.weight_decay,
                nesterov=self.nesterov,
            )
        if self.name == "adam":
            return torch.optim.Adam(
                params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay
            )
        if self.name == "adamw":
            return torch.optim.AdamW(
                params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay
            )
        return torch.optim.RMSprop(
            params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
