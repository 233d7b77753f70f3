"""What one training step on an image would do for the validation loss: gradient alignment.

For a model whose logits are its last linear layer, ``z = W h + b``, the gradient of one
image's cross-entropy loss with respect to that layer has a closed form,
``g = (softmax(z) - onehot(y)) [h, 1]^T`` (``sigmoid`` for a single binary logit), so it costs a
forward pass, no backward. A small step on the image changes the validation loss by about
``-lr <g, G>``, with ``G`` the validation loss's gradient. The cosine of ``g`` and ``G`` says how
well the image points where validation needs the model to go; an augmentation that raises it,
image by image, over the clean image's, gives the model a more useful step.

Two validation directions are kept: the **balanced** one (every fairness group's mean gradient
weighs the same) and the **worst** group's (the group with the highest validation loss), for the
accuracy and fairness objectives. The estimate is first-order and instantaneous (the
"gradient-alignment reward" of Müller, Biedenkapp & Hutter, "In-Loop Meta-Learning with
Gradient-Alignment Reward", 2021; also DeepAA, Zheng et al., ICLR 2022): it proposes, and the
callback's decision rule checks proposals with look-aheads before any swap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from evoaug.exceptions import ConfigError

__all__ = [
    "NOT_LAST_LINEAR",
    "Direction",
    "ValidationGradients",
    "alignment",
    "check_last_linear",
]

NOT_LAST_LINEAR = (
    "`estimator='alignment'` needs the model's outputs to be its last `nn.Linear` layer's "
    "(logits = W h + b, as in most classifiers): {why}. Name that layer with `feature_layer`, "
    "or use `estimator='lookahead'`"
)


def _residual(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``dLoss/dlogits`` per image: ``softmax(z) - onehot(y)``, or ``sigmoid(z) - y``."""
    if outputs.ndim == 1 or outputs.shape[1] == 1:
        return (torch.sigmoid(outputs.reshape(-1, 1).float()) - labels.reshape(-1, 1)).float()
    probabilities = outputs.float().softmax(dim=1)
    return probabilities - F.one_hot(labels, outputs.shape[1]).float()


@dataclass(frozen=True)
class Direction:
    """A validation gradient of the last layer: ``weight`` ``[C, D]`` and ``bias`` ``[C]``."""

    weight: torch.Tensor
    bias: torch.Tensor

    @property
    def norm(self) -> torch.Tensor:
        """Its Euclidean norm (weight and bias together)."""
        return (self.weight.square().sum() + self.bias.square().sum()).sqrt()


class ValidationGradients:
    """The last-layer gradients of the validation loss at θ, balanced and worst-group.

    Args:
        outputs: θ's logits on the validation probe, ``[M, C]`` (or ``[M]`` binary).
        features: The last layer's inputs on the same images, ``[M, D]``.
        labels: Their labels, ``[M]``.
        groups: Their fairness groups, ``[M]`` (``None``: one group).

    Example:
        >>> outputs, features = torch.randn(6, 3), torch.randn(6, 4)
        >>> grads = ValidationGradients(outputs, features, torch.tensor([0, 1, 2] * 2),
        ...                             torch.tensor([0, 0, 0, 1, 1, 1]))
        >>> grads.balanced.weight.shape, grads.worst.bias.shape
        (torch.Size([3, 4]), torch.Size([3]))
    """

    def __init__(
        self,
        outputs: torch.Tensor,
        features: torch.Tensor,
        labels: torch.Tensor,
        groups: torch.Tensor | None,
    ) -> None:
        residual = _residual(outputs, labels)
        features = features.float()
        groups = torch.zeros_like(labels) if groups is None else groups
        by_group, losses = [], []
        ids = torch.unique(groups)
        for group in ids:
            mask = groups == group
            weight = residual[mask].T @ features[mask] / mask.sum()
            by_group.append(Direction(weight, residual[mask].mean(dim=0)))
            losses.append(float(_loss(outputs[mask], labels[mask])))
        self.balanced = Direction(
            torch.stack([d.weight for d in by_group]).mean(dim=0),
            torch.stack([d.bias for d in by_group]).mean(dim=0),
        )
        worst = max(range(len(losses)), key=losses.__getitem__)
        self.worst = by_group[worst]
        self.worst_group = int(ids[worst])
        self.features = features  # kept for coverage (the validation images' features)


def _loss(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if outputs.ndim == 1 or outputs.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(outputs.reshape(-1).float(), labels.float())
    return F.cross_entropy(outputs.float(), labels)


def alignment(
    outputs: torch.Tensor, features: torch.Tensor, labels: torch.Tensor, direction: Direction
) -> torch.Tensor:
    """Per image, the cosine of its last-layer loss gradient with ``direction``, ``[N]``.

    Images the model fits exactly (a zero gradient) score 0.

    Example:
        >>> outputs, features, labels = torch.zeros(1, 2), torch.ones(1, 3), torch.tensor([1])
        >>> own = ValidationGradients(outputs, features, labels, None).balanced
        >>> alignment(outputs, features, labels, own).round(decimals=4).tolist()  # itself
        [1.0]
        >>> alignment(outputs, features, torch.tensor([0]), own).round(decimals=4).tolist()
        [-1.0]
    """
    residual = _residual(outputs, labels)
    features = features.float()
    inner = (residual * (features @ direction.weight.T + direction.bias)).sum(dim=1)
    norms = residual.norm(dim=1) * (features.square().sum(dim=1) + 1.0).sqrt()
    scale = norms * direction.norm
    return torch.where(scale > 0, inner / scale.clamp_min(1e-30), torch.zeros_like(inner))


def check_last_linear(
    model: nn.Module, layer: str | None, outputs: torch.Tensor, features: torch.Tensor
) -> None:
    """Raise unless ``outputs`` are the linear layer ``layer`` applied to ``features``.

    Raises:
        ConfigError: No such layer, not an ``nn.Linear``, or its output is not the model's.
    """
    if layer is None:
        raise ConfigError(NOT_LAST_LINEAR.format(why="the model has no nn.Linear layer"))
    module = model.get_submodule(layer)
    if not isinstance(module, nn.Linear):
        why = f"the feature layer {layer!r} is a {type(module).__name__}"
        raise ConfigError(NOT_LAST_LINEAR.format(why=why))
    with torch.no_grad():
        expected = module(features.to(module.weight.dtype)).reshape(outputs.shape)
    if not torch.allclose(expected.float(), outputs.float(), rtol=1e-3, atol=1e-4):
        why = f"the outputs of {layer!r} differ from the model's outputs"
        raise ConfigError(NOT_LAST_LINEAR.format(why=why))
