"""Fixtures shared by the op tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

import evoaug
from evoaug.ops import unregister_op


@pytest.fixture
def custom_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A free op name, named after the test module, unregistered after the test whatever
    happened."""
    name = f"Test{request.module.__name__.rsplit('.', 1)[-1].title().replace('_', '')}Op"
    assert name not in evoaug.available_ops()
    yield name
    if name in evoaug.available_ops():
        unregister_op(name)


def _identity_with_generator(
    images: torch.Tensor, magnitudes: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    return images


@pytest.fixture
def generator_kernel() -> Callable[..., torch.Tensor]:
    """A kernel that takes a ``generator``: what the affine and uint8 fast paths refuse."""
    return _identity_with_generator
