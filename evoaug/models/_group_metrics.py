"""Accuracy per group (sensitive-attribute value or class), synchronized across ranks."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

__all__ = ["GroupAccuracy"]


class GroupAccuracy(Metric):
    """Accuracy of each group seen since the last reset.

    The number of groups need not be known in advance: the metric keeps each sample's group and
    correctness (one byte and one long per sample) and concatenates them across ranks.

    Example:
        >>> import torch
        >>> metric = GroupAccuracy()
        >>> metric.update(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), torch.tensor([0, 0, 1]))
        >>> metric.compute()
        {0: 1.0, 1: 0.0}

    """

    full_state_update = False
    groups: list[torch.Tensor] | torch.Tensor
    correct: list[torch.Tensor] | torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("groups", default=[], dist_reduce_fx="cat")
        self.add_state("correct", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor, groups: torch.Tensor) -> None:
        """Record a batch: predicted and true labels and the group of each sample."""
        if not isinstance(self.groups, list) or not isinstance(self.correct, list):
            raise TypeError("GroupAccuracy.update called on synchronized state")
        self.groups.append(groups.detach().long().flatten())
        self.correct.append((preds.detach() == target.detach()).flatten().to(torch.uint8))

    def compute(self) -> dict[int, float]:
        """Group id -> accuracy, for every group with at least one sample, sorted by id."""
        groups = dim_zero_cat(self.groups)
        correct = dim_zero_cat(self.correct).float()
        result: dict[int, float] = {}
        for group in torch.unique(groups).tolist():
            result[int(group)] = float(correct[groups == group].mean())
        return result
