"""A small convolutional network for 32x32 images, fast enough for CPU recipes."""

from __future__ import annotations

import torch
from torch import nn

from evoaug.models._checks import check_int, check_rate

__all__ = ["SmallCNN"]


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """Three conv-BatchNorm-ReLU-max-pool blocks, global average pooling and a linear head.

    Widths are ``width``, ``2 * width`` and ``4 * width``; at 32x32 and ``width=32`` the network
    has about 94k parameters and needs about 10 MFLOPs per image, so the digits recipe trains
    in minutes on two CPU cores. Any input size of at least 8x8 works (the pooling is global).
    The last layer is the ``nn.Linear`` named ``fc``, whose input is the feature vector evoaug's
    diversity objective measures.

    Args:
        in_channels: Image channels (1 for grey, 3 for RGB).
        num_classes: Number of classes (output logits).
        width: Channels of the first block.
        dropout: Dropout probability before ``fc``, in ``[0, 1)``.

    Raises:
        ConfigError: An argument is out of range.

    Example:
        >>> import torch
        >>> net = SmallCNN(in_channels=1, num_classes=10)
        >>> net(torch.rand(2, 1, 32, 32)).shape
        torch.Size([2, 10])
        >>> net.fc.in_features
        128

    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        width: int = 32,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, 1)
        check_int("num_classes", num_classes, 2)
        check_int("width", width, 1)
        check_rate("dropout", dropout)
        self.features = nn.Sequential(
            _block(in_channels, width),
            _block(width, 2 * width),
            _block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, num_classes]`` of images ``[B, in_channels, H, W]``."""
        out: torch.Tensor = self.fc(self.dropout(self.features(x)))
        return out
