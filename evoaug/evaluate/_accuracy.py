"""The live model's accuracy on a probe's clean images: how well it fits them.

A model that classifies (nearly) every clean training image correctly but not the validation
images gets almost no loss signal from its training images any more: more epochs on them
memorize them. That is the regime where augmentation, a regularizer, pays off over a run even
when a short look-ahead only sees its cost (the look-ahead's horizon is a few dozen steps; the
gain comes over epochs). Before it, augmentation slows the fit and costs accuracy in short runs.
The callback's decision reads this measure on both probes to tell the two regimes apart.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from evoaug._probe import Probe
from evoaug.evaluate._call import eval_chunk
from evoaug.evaluate._isolation import capture_modes, model_device, restore_modes

__all__ = ["clean_correct"]


@torch.no_grad()
def clean_correct(
    model: nn.Module,
    probe: Probe,
    *,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Which of the probe's clean images the model classifies correctly, in eval mode.

    The model's weights, buffers and modes are left as they were (no BatchNorm statistics
    move in eval mode).

    Args:
        model: The live model; its outputs are class scores.
        probe: Clean images and their labels.
        normalize: Applied to the images before the model, as in training.

    Returns:
        Booleans ``[N]`` on the CPU, one per probe image.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from evoaug.evaluate import Probe, clean_correct
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> probe = Probe(torch.rand(8, 1, 4, 4), torch.arange(8) % 2)
        >>> clean_correct(model, probe).shape
        torch.Size([8])
    """
    device = model_device(model)
    modes = capture_modes(model)
    model.eval()
    chunk = eval_chunk(device)
    hits: list[torch.Tensor] = []
    try:
        for images, labels in zip(
            torch.split(probe.images, chunk), torch.split(probe.labels, chunk), strict=True
        ):
            images = images.to(device)
            outputs = model(images if normalize is None else normalize(images))
            hits.append((outputs.argmax(dim=1) == labels.to(device)).cpu())
    finally:
        restore_modes(model, modes)
    return torch.cat(hits)
