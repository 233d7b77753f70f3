"""The live model's accuracy on a probe's clean images: how well it fits them.

A model that classifies (nearly) every clean training image correctly but not the validation
images gets almost no loss signal from its training images any more: more epochs on them
memorize them. That is the regime where augmentation, a regularizer, pays off over a run even
when a short look-ahead only sees its cost (the look-ahead's horizon is a few dozen steps; the
gain comes over epochs). Before it, augmentation slows the fit and costs accuracy in short runs.
The callback's decision reads this measure on both probes to tell the two regimes apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from evoaug._checks import check_number
from evoaug._probe import Probe
from evoaug.evaluate._call import eval_chunk
from evoaug.evaluate._isolation import capture_modes, model_device, restore_modes

__all__ = ["clean_correct", "clean_correct_if_fitted", "clean_correct_if_left_behind"]


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
    return _correct(model, probe, normalize, max_errors=len(probe.labels))


@torch.no_grad()
def clean_correct_if_fitted(
    model: nn.Module,
    probe: Probe,
    *,
    accuracy: float,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor | None:
    """:func:`clean_correct`, or ``None`` once the model cannot reach ``accuracy`` on the probe.

    The probe is scored a chunk at a time and the scoring stops at the first chunk after which
    more images are wrong than ``accuracy`` allows: a model far from fitting its images costs
    one chunk's forward pass, not the probe's (the callback asks at every epoch end).

    Args:
        model: The live model; its outputs are class scores.
        probe: Clean images and their labels.
        accuracy: The fraction of the probe the model must classify correctly, in ``[0, 1]``.
        normalize: Applied to the images before the model, as in training.

    Returns:
        Booleans ``[N]`` on the CPU, one per probe image, when at least ``accuracy`` of them
        are correct; else ``None``.

    Raises:
        ConfigError: ``accuracy`` is not a number in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from evoaug.evaluate import Probe, clean_correct_if_fitted
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> probe = Probe(torch.rand(8, 1, 4, 4), torch.zeros(8, dtype=torch.long))
        >>> with torch.no_grad():
        ...     _ = model[1].bias.copy_(torch.tensor([10.0, -10.0]))  # class 0, always
        >>> clean_correct_if_fitted(model, probe, accuracy=0.99).all().item()
        True
        >>> clean_correct_if_fitted(model, Probe(probe.images, probe.labels + 1), accuracy=0.5)
    """
    accuracy = check_number("accuracy", accuracy, low=0.0, high=1.0)
    max_errors = _max_errors(len(probe.labels), accuracy)
    correct = _correct(model, probe, normalize, max_errors=max_errors)
    # A pass that stopped early holds more errors than the cap: one test covers both.
    return None if int((~correct).sum()) > max_errors else correct


@torch.no_grad()
def clean_correct_if_left_behind(
    model: nn.Module,
    train: Probe,
    val: Probe,
    *,
    accuracy: float,
    gap: float,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Both probes' correctness, or ``None`` once the model cannot be leaving ``val`` behind.

    The regime where a regularizer pays off: training-probe accuracy at least ``accuracy``,
    validation-probe accuracy below it and at least ``gap`` lower. The passes stop as soon as
    the answer is known, in the order that costs least where it is asked most: the training
    probe's first chunk (a model far from fitting its images stops there), then the validation
    probe whole (a model that classifies more than ``1 - gap`` of it, or ``accuracy`` of it,
    cannot be ``gap`` behind whatever its training probe: on a set it fits and generalizes, a
    third of the images of both passes), then the rest of the training probe, stopped at the
    first chunk after which more images are wrong than ``accuracy`` allows. It returns the two
    tensors, exactly :func:`clean_correct`'s, when and only when the model is in that regime.

    Args:
        model: The live model; its outputs are class scores.
        train: Clean training images and their labels.
        val: Clean validation images and their labels.
        accuracy: The training-probe accuracy from which the model fits its images, in
            ``[0, 1]``.
        gap: How far the validation probe's accuracy must lag behind, in ``[0, 1]``.
        normalize: Applied to the images before the model, as in training.

    Returns:
        Booleans ``[N_train]`` and ``[N_val]`` on the CPU when the training probe's accuracy is
        at least ``accuracy``, the validation probe's below it and at least ``gap`` lower (in
        float64, as their means); else ``None``.

    Raises:
        ConfigError: ``accuracy`` or ``gap`` is not a number in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from evoaug.evaluate import Probe, clean_correct_if_left_behind
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].bias.copy_(torch.tensor([10.0, -10.0]))  # class 0, always
        >>> train = Probe(torch.rand(8, 1, 4, 4), torch.zeros(8, dtype=torch.long))
        >>> val = Probe(torch.rand(8, 1, 4, 4), torch.arange(8) % 2)  # half right
        >>> [t.float().mean().item() for t in clean_correct_if_left_behind(
        ...     model, train, val, accuracy=0.99, gap=0.05)]
        [1.0, 0.5]
        >>> clean_correct_if_left_behind(model, train, train, accuracy=0.99, gap=0.05)
    """
    accuracy = check_number("accuracy", accuracy, low=0.0, high=1.0)
    gap = check_number("gap", gap, low=0.0, high=1.0)
    max_errors = _max_errors(len(train.labels), accuracy)
    head_size = eval_chunk(model_device(model))
    head = _correct(model, train, normalize, max_errors=max_errors, stop=head_size)
    errors = int((~head).sum())
    if errors > max_errors:
        return None
    val_correct = _correct(model, val, normalize, max_errors=len(val.labels))
    val_accuracy = float(val_correct.double().mean()) if len(val_correct) else 1.0
    # With training accuracy at most 1, `train - val >= gap` and `accuracy > val` (the
    # regime's test, in the same float arithmetic) cannot hold: no need for the rest.
    if val_accuracy >= accuracy or 1.0 - val_accuracy < gap:
        return None
    tail = _correct(model, train, normalize, max_errors=max_errors - errors, start=head_size)
    if errors + int((~tail).sum()) > max_errors:
        return None
    train_correct = torch.cat([head, tail])
    if float(train_correct.double().mean()) - val_accuracy < gap:
        return None
    return train_correct, val_correct


def _max_errors(n: int, accuracy: float) -> int:
    """The most wrong images of ``n`` with ``(n - wrong) / n >= accuracy`` (``accuracy <= 1``).

    The same float comparison as the accuracy's own, so that the cap and a full pass agree
    at every ``n`` and ``accuracy``.
    """
    if n == 0:
        return 0
    wrong = min(n, max(0, math.floor(n * (1.0 - accuracy))))
    while wrong >= 0 and (n - wrong) / n < accuracy:
        wrong -= 1
    while wrong < n and (n - wrong - 1) / n >= accuracy:
        wrong += 1
    return wrong


def _correct(
    model: nn.Module,
    probe: Probe,
    normalize: Callable[[torch.Tensor], torch.Tensor] | None,
    *,
    max_errors: int,
    start: int = 0,
    stop: int | None = None,
) -> torch.Tensor:
    """Correctness per image of ``probe[start:stop]``, chunk by chunk, until too many errors.

    The pass stops after the chunk where more than ``max_errors`` images are wrong.
    """
    device = model_device(model)
    modes = capture_modes(model)
    model.eval()
    chunk = eval_chunk(device)
    hits: list[torch.Tensor] = []
    errors = 0
    try:
        for images, labels in zip(
            torch.split(probe.images[start:stop], chunk),
            torch.split(probe.labels[start:stop], chunk),
            strict=True,
        ):
            images = images.to(device)
            outputs = model(images if normalize is None else normalize(images))
            hits.append((outputs.argmax(dim=1) == labels.to(device)).cpu())
            errors += int((~hits[-1]).sum())
            if errors > max_errors:
                break
    finally:
        restore_modes(model, modes)
    return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)
