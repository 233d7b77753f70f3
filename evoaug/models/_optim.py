"""Optimizers and per-epoch learning-rate schedules of :class:`evoaug.models.Classifier`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from evoaug.exceptions import ConfigError

__all__ = ["OPTIMIZERS", "SCHEDULERS", "EpochSchedule", "build_optimizer", "default_milestones"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "step", "none")


def build_optimizer(
    name: str,
    parameters: Iterable[torch.nn.Parameter],
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
) -> torch.optim.Optimizer:
    """SGD (with ``momentum`` and ``nesterov``), Adam or AdamW (decoupled weight decay)."""
    if name == "sgd":
        return torch.optim.SGD(
            parameters, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    raise ConfigError(f"`optimizer` must be one of {OPTIMIZERS}, got {name!r}")


def default_milestones(max_epochs: int) -> list[int]:
    """Epochs at 30%, 60% and 80% of training: WRN's 60/120/160 of 200 (Zagoruyko & Komodakis).

    Example:
        >>> default_milestones(200)
        [60, 120, 160]

    """
    return sorted({max(1, int(max_epochs * f)) for f in (0.3, 0.6, 0.8)})


@dataclass
class EpochSchedule:
    """Learning-rate factor per epoch: linear warm-up, then cosine, step or constant.

    Used as the ``lr_lambda`` of ``torch.optim.lr_scheduler.LambdaLR``, stepped once per epoch.
    Its fields are plain values, so ``LambdaLR.state_dict()`` saves and restores it.

    - warm-up: epoch ``e < warmup_epochs`` gets ``(e + 1) / (warmup_epochs + 1)``;
    - ``"cosine"``: ``0.5 * (1 + cos(pi * t / T))`` with ``t = e - warmup_epochs`` and
      ``T = max_epochs - warmup_epochs`` (Loshchilov & Hutter, "SGDR", ICLR 2017, without
      restarts);
    - ``"step"``: ``gamma ** (number of milestones <= e)``;
    - ``"none"``: 1.

    Example:
        >>> schedule = EpochSchedule("cosine", max_epochs=4, warmup_epochs=1)
        >>> [round(schedule(e), 3) for e in range(4)]
        [0.5, 1.0, 0.75, 0.25]

    """

    kind: str
    max_epochs: int
    warmup_epochs: int = 0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.2

    def __call__(self, epoch: int) -> float:
        """The factor that multiplies the base learning rate in ``epoch`` (0-based)."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        if self.kind == "cosine":
            span = max(1, self.max_epochs - self.warmup_epochs)
            t = min(epoch - self.warmup_epochs, span)
            return 0.5 * (1.0 + math.cos(math.pi * t / span))
        if self.kind == "step":
            return float(self.gamma ** sum(1 for m in self.milestones if m <= epoch))
        return 1.0
