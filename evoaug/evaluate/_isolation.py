"""Isolation helpers: RNG snapshots, seed streams, scratch copies, module modes, BN recalibration.

Evaluating candidates must leave the live model and every random stream exactly as they were.
The evaluator works on a scratch deep copy of the model, and does all its work inside
:func:`preserved_rng`, which restores torch's CPU and accelerator RNG, numpy's global RNG and
Python's ``random`` afterwards.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import random
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = [
    "capture_modes",
    "derive_seed",
    "model_device",
    "preserved_rng",
    "recalibrate_batchnorm",
    "restore_modes",
    "scratch_copy",
    "seed_global_rng",
]


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named ``stream``, a pure function of ``(seed, stream)``.

    Example:
        >>> derive_seed(0, "lookahead") == derive_seed(0, "lookahead")
        True
        >>> derive_seed(0, "lookahead") != derive_seed(1, "lookahead")
        True

    """
    digest = hashlib.blake2b(f"{seed}:{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a stateless model."""
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def _accelerator(device: torch.device) -> tuple[str, list[int]]:
    """The device type and the indices whose RNG the work may touch: only the model's device."""
    if device.type in ("cpu", "meta"):
        return "cpu", []
    index: int | None = device.index  # None for a bare "cuda" (the stubs say int)
    if index is not None:
        return device.type, [index]
    current = getattr(torch.get_device_module(device.type), "current_device", None)
    return device.type, [int(current()) if callable(current) else 0]


@contextlib.contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Restore torch (CPU and ``device``), numpy and ``random`` global RNG states on exit.

    Example:
        >>> import torch
        >>> before = torch.get_rng_state()
        >>> with preserved_rng(torch.device("cpu")):
        ...     _ = torch.rand(3)
        >>> bool(torch.equal(before, torch.get_rng_state()))
        True

    """
    numpy_state = np.random.get_state()  # noqa: NPY002 (saving the global state)
    python_state = random.getstate()
    try:
        device_type, indices = _accelerator(device)
        with torch.random.fork_rng(devices=indices, device_type=device_type):
            yield
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
        random.setstate(python_state)


def seed_global_rng(device: torch.device, seed: int) -> None:
    """Seed torch's CPU generator, ``device``'s generator, numpy and ``random`` (inside a fork).

    Only the model's own accelerator is seeded (``torch.manual_seed`` would seed every GPU,
    which :func:`preserved_rng` does not restore).
    """
    torch.default_generator.manual_seed(seed)
    device_type, indices = _accelerator(device)
    if device_type == "cuda":
        with torch.cuda.device(indices[0]):
            torch.cuda.manual_seed(seed)
    elif indices:  # other accelerators (tested on CPU and CUDA only)
        seed_device = getattr(torch.get_device_module(device_type), "manual_seed", None)
        if callable(seed_device):
            seed_device(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (inside preserved_rng)
    random.seed(seed)


class _LocalSyncBatchNorm(nn.SyncBatchNorm):
    """A SyncBatchNorm that never synchronizes: each rank scores its own candidates."""

    forward = _BatchNorm.forward


def scratch_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose SyncBatchNorm layers compute local statistics.

    Under DDP each rank evaluates different candidates; a synchronizing BatchNorm in the copy
    would exchange statistics between unrelated look-aheads (or hang).
    """
    scratch = copy.deepcopy(model)
    for module in scratch.modules():
        if type(module) is nn.SyncBatchNorm:
            module.__class__ = _LocalSyncBatchNorm
    return scratch


def capture_modes(model: nn.Module) -> list[bool]:
    """The ``training`` flag of every submodule, in ``model.modules()`` order."""
    return [m.training for m in model.modules()]


def restore_modes(model: nn.Module, modes: list[bool]) -> None:
    """Set every submodule's ``training`` flag from :func:`capture_modes` output."""
    for module, flag in zip(model.modules(), modes, strict=True):
        module.training = flag


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    images: torch.Tensor,
    forward: Callable[[nn.Module, torch.Tensor], object],
    *,
    chunk: int,
) -> int:
    """Recompute BatchNorm running statistics of ``model`` from ``images``.

    Every BatchNorm layer that tracks running statistics and is in training mode (frozen,
    eval-mode layers keep theirs) is reset, its momentum set to ``None`` (a cumulative average
    over chunks), and ``images`` are forwarded in near-equal chunks of at most ``chunk`` images
    with the model's current modes. Momenta are restored afterwards. With a single chunk the
    running mean is exactly the mean of the layer's inputs, and the running variance their
    unbiased variance.

    Args:
        model: The model, in the modes of a training step.
        images: Clean images, already on the model's device.
        forward: ``forward(model, images)`` runs the model (normalization included).
        chunk: Largest number of images per forward pass.

    Returns:
        The number of recalibrated layers.

    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.training]
    layers = [m for m in layers if m.track_running_stats]
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        n_chunks = max(1, -(-images.shape[0] // chunk))
        for part in torch.tensor_split(images, n_chunks):
            forward(model, part)
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
    return len(layers)
