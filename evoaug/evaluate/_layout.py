"""The scratch model's memory layout: its own for look-ahead steps, ``channels_last`` for scoring.

:class:`Layout` switches the scratch copy's 4-d weights between the two; the live model is
never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["Layout"]

_CL = torch.channels_last


class Layout:
    """The scratch model's memory layout: its own for steps, ``channels_last`` for scoring.

    On the CPU, oneDNN runs convolutions, BatchNorm and pooling on ``channels_last`` tensors
    faster than on the default layout (no-grad passes of 128 images on 2 cores: small CNNs
    1.7-2.5x, ResNet-18 1.15x). The passes that score candidates (validation probe,
    recalibration, difficulty and diversity draws: several hundred images per candidate) are
    most of what a generation costs beyond its look-ahead steps, so they run ``channels_last``;
    the look-ahead steps keep the model's own layout, so they train as the model trains. The
    switch reassigns the data of the scratch's 4-d parameters and buffers that are in another
    layout (those already ``channels_last`` are left alone); the live model is never touched.
    Values differ from a default-layout pass by float rounding only (~1e-7).
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        tensors = [*model.parameters(), *model.buffers()]
        self._tensors = (
            [t for t in tensors if t.ndim == 4 and not t.is_contiguous(memory_format=_CL)]
            if device.type == "cpu"
            else []
        )
        self.scoring = False

    def for_scoring(self) -> None:
        """Put the 4-d weights in ``channels_last`` (no-op when inactive or already there)."""
        self._switch(True)

    @contextmanager
    def training(self) -> Iterator[None]:
        """The model's own layout inside (look-ahead steps), ``channels_last`` again after."""
        self._switch(False)
        try:
            yield
        finally:
            self._switch(True)

    def disable(self) -> None:
        """Keep the model's own layout from now on (a model whose forward needs it)."""
        self._switch(False)
        self._tensors = []

    @property
    def active(self) -> bool:
        """Whether the scoring passes run in ``channels_last`` now."""
        return self.scoring and bool(self._tensors)

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` in the layout of the current passes."""
        if self.active and images.ndim == 4:
            return images.contiguous(memory_format=_CL)
        return images

    def _switch(self, scoring: bool) -> None:
        if scoring == self.scoring:
            return
        layout = _CL if scoring else torch.contiguous_format
        with torch.no_grad():
            for t in self._tensors:
                t.data = t.data.contiguous(memory_format=layout)
        self.scoring = scoring
