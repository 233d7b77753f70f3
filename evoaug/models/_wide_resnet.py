"""Wide residual networks (Zagoruyko & Komodakis, 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evoaug.exceptions import ConfigError
from evoaug.models._checks import check_int, check_rate

__all__ = ["WideResNet"]


class _WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-(dropout)-BN-ReLU-conv3x3 plus a shortcut.

    When the shape changes, the shortcut is a 1x1 convolution of the pre-activated input, as in
    the authors' implementation.
    """

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        shortcut: torch.Tensor = x if self.shortcut is None else self.shortcut(activated)
        out: torch.Tensor = self.conv1(activated)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-d-k (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

    A 3x3 stem convolution with 16 channels, three groups of ``n = (depth - 4) / 6``
    pre-activation blocks with ``16k``, ``32k`` and ``64k`` channels (strides 1, 2, 2), a final
    BatchNorm-ReLU, global average pooling and the linear head ``fc``. WRN-28-10 (about 36.5M
    parameters with 10 classes) is the network of the AutoAugment, RandAugment and
    TrivialAugment CIFAR results; WRN-40-2 (2.2M) and WRN-16-4 (2.7M) are their smaller ones.

    Args:
        depth: Total depth, ``6n + 4`` for ``n >= 1`` (10, 16, 22, 28, 40, ...).
        widen_factor: k, the width multiplier.
        in_channels: Image channels.
        num_classes: Number of classes (output logits).
        dropout: Dropout probability between the two convolutions of each block, in ``[0, 1)``
            (the paper uses 0.3 in some runs; the augmentation papers use 0).

    Raises:
        ConfigError: ``depth`` is not ``6n + 4`` or another argument is out of range.

    Example:
        >>> import torch
        >>> WideResNet(depth=16, widen_factor=4)(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 10])

    """

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        in_channels: int = 3,
        num_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        bad_type = isinstance(depth, bool) or not isinstance(depth, int)
        if bad_type or depth < 10 or (depth - 4) % 6 != 0:
            raise ConfigError(
                f"`depth` must be 6n + 4 for an int n >= 1 (10, 16, 22, 28, 34, 40, ...), "
                f"got {depth!r}"
            )
        check_int("widen_factor", widen_factor, 1)
        check_int("in_channels", in_channels, 1)
        check_int("num_classes", num_classes, 2)
        check_rate("dropout", dropout)
        n = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        groups: list[nn.Module] = []
        in_planes = 16
        for planes, stride in zip(widths, (1, 2, 2), strict=True):
            blocks = [_WideBlock(in_planes, planes, stride, dropout)]
            blocks += [_WideBlock(planes, planes, 1, dropout) for _ in range(n - 1)]
            groups.append(nn.Sequential(*blocks))
            in_planes = planes
        self.block1, self.block2, self.block3 = groups
        self.bn = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]`` of images ``[B, in_channels, H, W]``."""
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn(out))
        logits: torch.Tensor = self.fc(torch.flatten(self.pool(out), 1))
        return logits
