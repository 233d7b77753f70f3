"""Affine ops: the `affine` matrices of the op table, `register_op(affine=...)`, and fusion."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import evoaug
from evoaug.ops import get_op
from evoaug.ops._geometric import warp_affine

AFFINE_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Zoom")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _shift_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Shift right and down by ``magnitudes`` pixels."""
    m = torch.zeros(magnitudes.shape[0], 2, 3, dtype=magnitudes.dtype)
    m[:, 0, 0] = 1.0
    m[:, 1, 1] = 1.0
    m[:, 0, 2] = -magnitudes
    m[:, 1, 2] = -magnitudes
    return m


def test_exactly_the_warps_declare_affine() -> None:
    declared = {name for name in evoaug.ops.BUILTIN_OPS if get_op(name).affine is not None}
    assert declared == set(AFFINE_OPS)


@pytest.mark.parametrize("name", AFFINE_OPS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_is_warp_affine_of_its_matrices(name: str, dtype: torch.dtype) -> None:
    spec = get_op(name)
    images = torch.rand(6, 3, 10, 14, generator=_gen(), dtype=dtype)
    mags = spec.magnitude(torch.rand(6, generator=_gen(1))) * torch.tensor([1, -1] * 3)
    matrices = spec.matrices(mags.to(dtype), 10, 14)
    assert matrices.shape == (6, 2, 3) and matrices.dtype == dtype
    assert torch.equal(spec(images, mags), warp_affine(images, matrices))


def test_matrices_of_a_non_affine_op_raise() -> None:
    with pytest.raises(evoaug.OpError, match="'Invert' is not affine"):
        get_op("Invert").matrices(torch.zeros(2), 4, 4)


@pytest.mark.parametrize("affine", [3, "rotate", [_shift_matrix]])
def test_affine_must_be_callable(custom_name: str, affine: object) -> None:
    with pytest.raises(evoaug.ConfigError, match="`affine` must be a function"):
        evoaug.register_op(custom_name, affine=affine)  # type: ignore[arg-type]
    assert custom_name not in evoaug.available_ops()


def test_affine_ops_cannot_take_a_generator(
    custom_name: str, generator_kernel: Callable[..., torch.Tensor]
) -> None:
    with pytest.raises(evoaug.ConfigError, match="cannot take a `generator`"):
        evoaug.register_op(custom_name, affine=_shift_matrix)(generator_kernel)
    assert custom_name not in evoaug.available_ops()


@pytest.mark.parametrize(
    ("affine", "message"),
    [
        (lambda m, h, w: torch.zeros(m.shape[0], 3, 3), r"`affine` must return .*\(2, 2, 3\)"),
        (lambda m, h, w: None, "`affine` must return a tensor of shape .* got NoneType"),
        (lambda m, h, w: 1 / 0, "`affine` raised ZeroDivisionError"),
    ],
)
def test_bad_matrices_raise_op_error(custom_name: str, affine: object, message: str) -> None:
    evoaug.register_op(custom_name, affine=affine)(lambda images, mags: images)  # type: ignore[arg-type]
    with pytest.raises(evoaug.OpError, match=f"^op {custom_name!r}: {message}"):
        get_op(custom_name).matrices(torch.zeros(2), 4, 4)
    policy = evoaug.Policy.from_genes([[(custom_name, 1.0, 0.5)]])
    with pytest.raises(evoaug.OpError, match=message):
        policy(torch.rand(2, 3, 4, 4), generator=_gen())


def test_custom_affine_op_is_fused_and_equals_its_kernel(custom_name: str) -> None:
    calls = []

    @evoaug.register_op(custom_name, low=0.0, high=3.0, signed=True, affine=_shift_matrix)
    def shift(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        calls.append(images.shape[0])
        h, w = images.shape[-2:]
        return warp_affine(images, _shift_matrix(magnitudes.to(images.dtype), h, w))

    images = torch.rand(64, 3, 9, 9, generator=_gen())
    policy = evoaug.Policy.from_genes([[(custom_name, 1.0, 0.5)], [("Rotate", 1.0, 0.2)]])
    out = policy(images, generator=_gen(1))
    assert calls == []  # warped with the Rotate images, not through the kernel
    kinds = set()
    for image, result in zip(images, out, strict=True):
        candidates = {
            (name, sign): get_op(name)(image[None], torch.tensor([sign * magnitude]))[0]
            for name, magnitude in ((custom_name, 1.5), ("Rotate", 27.0))
            for sign in (1.0, -1.0)
        }
        kind = next(k for k, v in candidates.items() if torch.equal(v, result))
        kinds.add(kind)
    assert len(kinds) == 4
    assert calls == [1] * 2 * 64  # the candidates above, two per image


def test_replacing_an_op_recompiles_policies(custom_name: str) -> None:
    evoaug.register_op(custom_name, affine=_shift_matrix)(lambda images, mags: images)
    policy = evoaug.Policy.from_genes([[(custom_name, 1.0, 1.0)]])
    images = torch.rand(4, 1, 6, 6, generator=_gen())
    shifted = policy(images, generator=_gen())
    assert not torch.equal(shifted, images)
    evoaug.register_op(custom_name, replace=True)(lambda images, mags: 1 - images)
    assert torch.equal(policy(images, generator=_gen()), 1 - images)


def test_warp_affine_works_inside_and_after_inference_mode() -> None:
    # The pixel coordinates are cached; made in inference mode, they must still serve later.
    images = torch.rand(4, 3, 11, 7, generator=_gen())
    matrices = get_op("Rotate").matrices(torch.tensor([10.0, -20.0, 30.0, 0.0]), 11, 7)
    with torch.inference_mode():
        inside = warp_affine(images, matrices)
    after = warp_affine(images.requires_grad_(), matrices)
    assert torch.equal(inside, after.detach())
    torch.autograd.backward(after.sum())  # still differentiable through the grid
    assert images.grad is not None and images.grad.shape == images.shape


@pytest.mark.parametrize(
    ("name", "magnitude", "expected"),
    [
        ("ShearX", 0.5, [[1.0, 0.5, 2.5], [0.0, 1.0, 0.0]]),  # anchored at the top edge
        ("ShearY", -0.25, [[1.0, 0.0, 0.0], [-0.25, 1.0, -2.5]]),  # and at the left edge
        ("TranslateX", 0.25, [[1.0, 0.0, -5.0], [0.0, 1.0, 0.0]]),  # inverse: shift back
        ("TranslateY", -0.1, [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]),
        ("Rotate", 90.0, [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]),
        ("Zoom", 1.0, [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]),  # zoom in 2x: sample half as far
    ],
)
def test_builtin_affine_matrices(name: str, magnitude: float, expected: list[list[float]]) -> None:
    for dtype in (torch.float32, torch.float64):
        mags = torch.tensor([magnitude, 0.0], dtype=dtype)
        matrices = get_op(name).matrices(mags, 10, 20)  # height 10, width 20
        assert matrices.dtype == dtype and matrices.shape == (2, 2, 3)
        torch.testing.assert_close(matrices[0], torch.tensor(expected, dtype=dtype))
        identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
        assert torch.equal(matrices[1], identity)  # level 0 is the identity, exactly
