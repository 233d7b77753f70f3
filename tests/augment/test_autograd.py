"""The engine runs built-in ops without autograd, and what it returns trains like any tensor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

import evoaug
from evoaug import Policy
from evoaug.augment import apply, compile_policy
from evoaug.ops import get_op, is_builtin, unregister_op

MIXED = [  # affine, float and uint8 ops, one and two gene positions
    [("Rotate", 0.9, 0.5), ("Brightness", 0.8, 0.5)],
    [("Equalize", 1.0, 0.0)],
    [("Color", 1.0, 0.7), ("Posterize", 0.9, 0.5)],
]
ONE_OP = [[("Contrast", 1.0, 0.6)]]


@pytest.fixture
def custom_name() -> Iterator[str]:
    name = "TestAutogradOp"
    yield name
    if name in evoaug.available_ops():
        unregister_op(name)


def _images(dtype: torch.dtype, *, requires_grad: bool = False) -> torch.Tensor:
    images = torch.rand(24, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    if dtype == torch.uint8:
        return (images * 255).round().to(torch.uint8)
    return images.requires_grad_(requires_grad)


@pytest.mark.parametrize("genes", [MIXED, ONE_OP], ids=["mixed", "one-op"])
@pytest.mark.parametrize("path", ["grouped", "static"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_the_result_is_a_normal_tensor_that_training_can_save(
    genes: list[list[tuple[str, float, float]]], path: str, dtype: torch.dtype
) -> None:
    compiled = compile_policy(genes, magnitude_sampling="uniform")
    out = apply(compiled, _images(dtype), torch.Generator().manual_seed(1), path=path)  # type: ignore[arg-type]
    assert not out.is_inference()
    conv = nn.Conv2d(3, 2, 3)
    conv(out.float()).sum().backward()  # an inference tensor raises: cannot be saved
    assert conv.weight.grad is not None and bool(conv.weight.grad.abs().sum() > 0)


def test_images_that_require_grad_keep_their_gradient() -> None:
    images = _images(torch.float32, requires_grad=True)
    out = Policy.from_genes([[("Brightness", 1.0, 0.5)]])(images)
    assert out.requires_grad
    out.sum().backward()
    assert images.grad is not None
    # Brightness multiplies each image by its factor: the gradient, where nothing clips
    factor = (out.detach() / images.detach()).amax(dim=(1, 2, 3), keepdim=True)
    inside = out.detach() < 1.0
    torch.testing.assert_close(images.grad[inside], factor.expand_as(images)[inside])
    assert not torch.equal(factor, torch.ones_like(factor))


def test_results_do_not_depend_on_autograd_being_off() -> None:
    compiled = compile_policy(MIXED, magnitude_sampling="uniform")
    images = _images(torch.float32)
    off = apply(compiled, images, torch.Generator().manual_seed(3))
    on = apply(compiled, images.clone().requires_grad_(), torch.Generator().manual_seed(3))
    assert torch.equal(off, on.detach())


def test_built_in_ops_are_told_apart_from_ops_registered_over_them(custom_name: str) -> None:
    assert is_builtin(get_op("Rotate")) and is_builtin(get_op("Equalize"))
    assert compile_policy(MIXED).builtin

    @evoaug.register_op(custom_name)
    def darken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images * 0.5

    assert not is_builtin(get_op(custom_name))
    assert not compile_policy([*MIXED, [(custom_name, 1.0, 0.5)]]).builtin


def test_custom_ops_run_with_autograd_as_before(custom_name: str) -> None:
    seen: list[bool] = []

    @evoaug.register_op(custom_name)
    def nudge(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        # A kernel that needs gradients (an adversarial step, say) must still get them.
        seen.append(torch.is_inference_mode_enabled())
        with torch.enable_grad():
            x = images.detach().requires_grad_()
            (grad,) = torch.autograd.grad(x.square().sum(), x)
        return (images - 0.01 * grad).clamp(0.0, 1.0)

    policy = Policy.from_genes([[(custom_name, 1.0, 0.5)], [("Rotate", 1.0, 0.5)]])
    out = policy(_images(torch.uint8), generator=torch.Generator().manual_seed(0))
    assert seen == [False] and out.dtype == torch.uint8


@pytest.mark.parametrize("path", ["grouped", "static"])
def test_built_in_policies_run_without_autograd(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    import evoaug.augment._apply as engine

    modes: list[bool] = []
    name = "_run_grouped" if path == "grouped" else "run_static"
    inner = getattr(engine, name)

    def recording(*args: object) -> torch.Tensor:
        modes.append(torch.is_inference_mode_enabled())
        return inner(*args)

    monkeypatch.setattr(engine, name, recording)
    compiled = compile_policy(MIXED)
    generator = torch.Generator().manual_seed(0)
    apply(compiled, _images(torch.uint8), generator, path=path)  # type: ignore[arg-type]
    apply(compiled, _images(torch.float32), generator, path=path)  # type: ignore[arg-type]
    apply(compiled, _images(torch.float32, requires_grad=True), generator, path=path)  # type: ignore[arg-type]
    assert modes == [True, True, False]  # gradients asked for: autograd stays on
