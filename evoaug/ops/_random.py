"""Random draws from an explicit generator, on any device.

A ``torch.Generator`` lives on one device. These helpers draw on the generator's device and move
the result, so a CPU generator works with CUDA images (and vice versa), and a seeded run gives the
same numbers on every device. With ``generator=None`` a fresh, OS-seeded generator is used:
evoaug never reads or advances torch's global random state.
"""

from __future__ import annotations

import os

import torch

__all__ = ["fresh_generator", "normal", "randint", "uniform"]


def fresh_generator(device: torch.device | str = "cpu") -> torch.Generator:
    """A new generator seeded from the operating system's entropy pool."""
    g = torch.Generator(device=device)
    g.manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
    return g


def _resolve(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    return generator if generator is not None else fresh_generator(device)


def uniform(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform samples in ``[0, 1)`` of ``shape``, returned on ``device``."""
    g = _resolve(generator, device)
    out = torch.rand(shape, generator=g, device=g.device, dtype=dtype)
    return out.to(device)


def normal(
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal samples of ``shape``, returned on ``device``."""
    g = _resolve(generator, device)
    out = torch.randn(shape, generator=g, device=g.device, dtype=dtype)
    return out.to(device)


def randint(
    high: int, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """Integers uniform in ``[0, high)`` of ``shape`` (int64), returned on ``device``."""
    g = _resolve(generator, device)
    out = torch.randint(high, shape, generator=g, device=g.device)
    return out.to(device)
