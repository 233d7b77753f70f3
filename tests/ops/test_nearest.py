"""Nearest-pixel warps: ``warp_affine(..., interpolation="nearest")`` and the kernels' keyword."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

import evoaug
from evoaug.ops import _geometric as G
from evoaug.ops import get_op, register_op
from evoaug.ops._geometric import warp_affine, warp_nearest

_AFFINE_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Zoom")


def _images(b: int = 6, c: int = 3, h: int = 20, w: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, c, h, w), generator=g, dtype=torch.uint8)


def _matrices(b: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Rotations, shears, zooms and shifts mixed: one matrix per image."""
    g = torch.Generator().manual_seed(seed)
    mags = torch.rand(b, generator=g) * 2 - 1
    parts = [
        G.rotate_matrix(mags * 40, h, w),
        G.shear_x_matrix(mags * 0.5, h, w),
        G.zoom_matrix(mags * 0.3, h, w),
        G.translate_y_matrix(mags * 0.3, h, w),
    ]
    return torch.cat(parts)[torch.randperm(4 * b, generator=g)[:b]]


def _grid_sample_nearest(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """The same warp through ``grid_sample(mode="nearest")``, the reference."""
    b, _, h, w = images.shape
    x, y, half = G._coordinates(h, w, images.device, images.dtype)
    m0, m1, m2 = matrices.to(images.dtype).view(b, 2, 3, 1, 1).unbind(2)
    grid = (m0 * x + m1 * y + m2).div(half).permute(0, 2, 3, 1)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def test_matches_grid_sample_nearest_except_on_ties() -> None:
    images = _images().float() / 255
    matrices = _matrices(6, 20, 28)
    ours = warp_affine(images, matrices, interpolation="nearest")
    reference = _grid_sample_nearest(images, matrices)
    differ = (ours != reference).any(dim=1).float().mean().item()
    assert differ < 1e-3  # only pixels exactly half-way between two source pixels


def test_whole_pixel_shifts_are_exact_copies_with_zeros_coming_in() -> None:
    images = _images(b=2, h=10, w=12)
    shifts = torch.tensor([3.0 / 12, -5.0 / 12])  # 3 px right, 5 px left
    out = warp_affine(images, G.translate_x_matrix(shifts, 10, 12), interpolation="nearest")
    assert torch.equal(out[0, :, :, 3:], images[0, :, :, :-3])
    assert torch.equal(out[0, :, :, :3], torch.zeros_like(out[0, :, :, :3]))
    assert torch.equal(out[1, :, :, :-5], images[1, :, :, 5:])
    assert torch.equal(out[1, :, :, -5:], torch.zeros_like(out[1, :, :, -5:]))


def test_identity_matrix_returns_the_input() -> None:
    images = _images()
    identity = G.rotate_matrix(torch.zeros(6), 20, 28)
    assert torch.equal(warp_affine(images, identity, interpolation="nearest"), images)


@pytest.mark.parametrize("size", [(20, 28), (33, 17), (1, 5)])
def test_uint8_gives_the_bytes_of_the_float32_warp(size: tuple[int, int]) -> None:
    h, w = size
    images = _images(b=8, h=h, w=w)
    matrices = _matrices(8, h, w, seed=3)
    as_uint8 = warp_affine(images, matrices, interpolation="nearest")
    as_float = warp_affine(images.float() / 255, matrices, interpolation="nearest")
    assert as_uint8.dtype == torch.uint8
    assert torch.equal(as_uint8, (as_float * 255).round().to(torch.uint8))


def test_output_values_are_input_values_or_zero() -> None:
    images = _images(b=1, c=1, h=16, w=16) | 1  # no zeros in the input
    matrices = G.rotate_matrix(torch.tensor([33.0]), 16, 16)
    out = warp_affine(images, matrices, interpolation="nearest")
    values = set(out.unique().tolist())
    assert 0 in values  # the corners came from outside
    assert values - {0} <= set(images.unique().tolist())


def test_agrees_with_torchvision_nearest_rotation() -> None:
    """torchvision's ``F.affine(..., NEAREST)`` through grid_sample: equal but for ties."""
    images = _images(b=1, h=32, w=32)[0]
    ours = warp_affine(
        images[None], G.rotate_matrix(torch.tensor([30.0]), 32, 32), interpolation="nearest"
    )[0]
    theirs = TF.rotate(images, 30.0, interpolation=InterpolationMode.NEAREST)
    assert (ours != theirs).any(dim=0).float().mean().item() < 1e-3


def test_non_finite_matrices_read_the_border() -> None:
    images = _images(b=3)
    matrices = G.rotate_matrix(torch.zeros(3), 20, 28).clone()
    matrices[0, 0, 2] = math.nan
    matrices[1, 1, 1] = math.inf
    matrices[2, 0, 0] = -math.inf
    out = warp_affine(images, matrices, interpolation="nearest")
    assert out.shape == images.shape
    # A NaN shift, and infinite scales of coordinates that are never 0 (half-integers for even
    # sides): every position is far outside, so every pixel reads the border.
    assert torch.equal(out, torch.zeros_like(out))
    assert warp_affine(images.float(), matrices, interpolation="nearest").abs().sum() == 0


def test_out_receives_the_result_even_when_it_is_the_input() -> None:
    images = _images()
    matrices = _matrices(6, 20, 28, seed=5)
    expected = warp_nearest(images, matrices)
    target = images.clone()
    assert warp_nearest(target, matrices, out=target) is target
    assert torch.equal(target, expected)


def test_integer_index_path_equals_the_float_one(monkeypatch: pytest.MonkeyPatch) -> None:
    images = _images()
    matrices = _matrices(6, 20, 28, seed=7)
    expected = warp_nearest(images, matrices)
    monkeypatch.setattr(G, "_EXACT_FLOAT_INDEX", 0)  # as for images over 16M pixels
    assert torch.equal(warp_nearest(images, matrices), expected)


def test_float64_images_are_warped_in_float64() -> None:
    images = _images().double() / 255
    out = warp_affine(images, _matrices(6, 20, 28), interpolation="nearest")
    assert out.dtype == torch.float64
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0.0}


@pytest.mark.parametrize("name", _AFFINE_OPS)
def test_affine_kernels_take_the_interpolation(name: str) -> None:
    spec = get_op(name)
    assert spec.takes_interpolation
    images = _images().float() / 255
    mags = torch.linspace(-1, 1, 6) * spec.high
    matrices = spec.matrices(mags, 20, 28)
    nearest = spec(images, mags, interpolation="nearest")
    assert torch.equal(nearest, warp_affine(images, matrices, interpolation="nearest"))
    assert torch.equal(spec(images, mags), warp_affine(images, matrices))  # default: bilinear


def test_perspective_takes_the_interpolation() -> None:
    spec = get_op("Perspective")
    assert spec.takes_interpolation and spec.takes_generator
    images = _images(b=4).float() / 255
    mags = torch.full((4,), 0.5)
    out = spec(images, mags, generator=torch.Generator().manual_seed(0), interpolation="nearest")
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0.0}
    blended = spec(images, mags, generator=torch.Generator().manual_seed(0))
    assert not set(blended.unique().tolist()) <= set(images.unique().tolist()) | {0.0}


def test_registry_detects_the_keyword(custom_name: str) -> None:
    seen: list[str] = []

    def kernel(images, magnitudes, *, interpolation="bilinear"):  # type: ignore[no-untyped-def]
        seen.append(interpolation)
        return images

    register_op(custom_name)(kernel)
    spec = get_op(custom_name)
    assert spec.takes_interpolation
    images = torch.rand(2, 3, 4, 4)
    spec(images, torch.zeros(2))
    spec(images, torch.zeros(2), interpolation="nearest")
    assert seen == ["bilinear", "nearest"]
    policy = evoaug.Policy.from_genes([[(custom_name, 1.0, 0.5)]], interpolation="nearest")
    policy(images, generator=torch.Generator().manual_seed(0))
    assert seen[-1] == "nearest"


def test_kernels_without_the_keyword_never_get_it(custom_name: str) -> None:
    def kernel(images, magnitudes, **kwargs):  # type: ignore[no-untyped-def]
        assert "interpolation" not in kwargs
        return images

    register_op(custom_name)(kernel)
    spec = get_op(custom_name)
    assert not spec.takes_interpolation
    images = torch.rand(2, 3, 4, 4)
    assert torch.equal(spec(images, torch.zeros(2), interpolation="nearest"), images)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nearest_warp_on_cuda_equals_the_cpu() -> None:
    images = _images(b=32, h=40, w=36)
    matrices = _matrices(32, 40, 36, seed=11)
    expected = warp_affine(images, matrices, interpolation="nearest")
    out = warp_affine(images.cuda(), matrices.cuda(), interpolation="nearest")
    assert out.device.type == "cuda"
    # The positions are computed in float32 on both devices; a fused multiply-add on one of them
    # could move a position that lies exactly on a tie, so allow a few such pixels.
    assert (out.cpu() != expected).any(dim=1).float().mean().item() < 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nearest_policy_on_cuda_uint8_equals_its_float_copy() -> None:
    policy = evoaug.Policy.preset("trivialaugment", interpolation="nearest")
    images = _images(b=64, h=32, w=32).cuda()
    as_uint8 = policy(images, generator=torch.Generator("cuda").manual_seed(0))
    as_float = policy(images.float() / 255, generator=torch.Generator("cuda").manual_seed(0))
    assert torch.equal(as_uint8, (as_float * 255).round().to(torch.uint8))
