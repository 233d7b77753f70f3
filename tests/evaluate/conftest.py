"""Failing ops shared by the evaluator tests (registered per test, removed after it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import evoaug


@pytest.fixture
def nan_op() -> Iterator[str]:
    """An op that turns every image it touches into NaN."""

    @evoaug.register_op("EvaluateNaN")
    def make_nan(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images * float("nan")

    yield "EvaluateNaN"
    evoaug.ops.unregister_op("EvaluateNaN")


@pytest.fixture
def raising_op() -> Iterator[str]:
    """An op whose kernel raises ``RuntimeError("kernel exploded")``."""

    @evoaug.register_op("EvaluateRaises")
    def boom(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("kernel exploded")

    yield "EvaluateRaises"
    evoaug.ops.unregister_op("EvaluateRaises")
