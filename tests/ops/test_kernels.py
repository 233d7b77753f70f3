"""Contracts every built-in kernel keeps: shape, dtype, range, identity at level 0, per-sample."""

from __future__ import annotations

import pytest
import torch

import evoaug
from evoaug.ops import BUILTIN_OPS, OpSpec, get_op

# Ops that draw random numbers beyond their magnitude (they take a `generator`).
RANDOM_OPS = ("Cutout", "GaussianNoise", "Perspective")
DETERMINISTIC_OPS = tuple(name for name in BUILTIN_OPS if name not in RANDOM_OPS)
# Resampling ops: at level 0 they reproduce the input up to grid_sample's rounding.
WARPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Zoom", "Perspective")
MAGNITUDE_OPS = tuple(name for name in BUILTIN_OPS if get_op(name).has_magnitude)

# [B, C, H, W]: grayscale and RGB, non-square and square.
SHAPES = ((4, 1, 17, 23), (4, 3, 17, 23), (3, 1, 32, 32), (3, 3, 32, 32))


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(
    shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """uint8-derived images (multiples of 1/255) so Posterize/Equalize are exact."""
    levels = torch.randint(0, 256, shape, generator=_generator(seed))
    return (levels.to(torch.float64) / 255.0).to(dtype)


def _magnitudes(spec: OpSpec, n: int, seed: int = 1) -> torch.Tensor:
    """Random levels in [0, 1] mapped through the op's range, with random signs if signed."""
    g = _generator(seed)
    mags = spec.magnitude(torch.rand(n, generator=g))
    if spec.signed:
        mags = mags * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    return mags


def _call_kernel(
    spec: OpSpec, images: torch.Tensor, mags: torch.Tensor, seed: int = 2
) -> torch.Tensor:
    """Call the raw kernel (not OpSpec, which would cast the dtype back)."""
    kwargs = {"generator": _generator(seed)} if spec.takes_generator else {}
    out: torch.Tensor = spec.fn(images, mags, **kwargs)
    return out


def test_catalog_is_complete() -> None:
    assert set(BUILTIN_OPS) <= set(evoaug.available_ops())
    assert len(BUILTIN_OPS) >= 20
    assert {get_op(name).takes_generator for name in RANDOM_OPS} == {True}
    assert not any(get_op(name).takes_generator for name in DETERMINISTIC_OPS)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_shape_dtype_and_range(name: str, shape: tuple[int, ...]) -> None:
    spec = get_op(name)
    images = _images(shape)
    mags = _magnitudes(spec, shape[0])
    out = spec(images, mags, generator=_generator(2))
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert not torch.isnan(out).any()
    assert out.min() >= 0.0
    assert out.max() <= 1.0
    raw = _call_kernel(spec, images, mags)
    assert raw.dtype == torch.float32
    assert torch.equal(raw, out)


@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_float64_stays_float64(name: str) -> None:
    spec = get_op(name)
    images = _images((3, 3, 17, 23), dtype=torch.float64)
    mags = _magnitudes(spec, 3)
    out = _call_kernel(spec, images, mags)
    assert out.dtype == torch.float64
    assert out.shape == images.shape
    assert 0.0 <= out.min() <= out.max() <= 1.0
    # Same result as in float32, up to float32 rounding.
    out32 = _call_kernel(spec, images.float(), mags)
    torch.testing.assert_close(out.float(), out32, atol=1e-5, rtol=0)


@pytest.mark.parametrize("value", [0.0, 1.0])
@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_saturated_images_stay_in_range(name: str, value: float) -> None:
    # Regression: bilinear weights and normalized blur kernels can sum to 1 + 1 ulp, which put
    # all-white images one ulp above 1 and made a policy reject its own output.
    spec = get_op(name)
    images = torch.full((64, 3, 17, 23), value)
    mags = spec.magnitude(torch.linspace(0.0, 1.0, 64))
    if spec.signed:
        mags = mags * torch.tensor([1.0, -1.0]).repeat(32)
    out = spec(images, mags, generator=_generator())
    assert out.min() >= 0.0
    assert out.max() <= 1.0


@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_input_is_not_modified(name: str) -> None:
    spec = get_op(name)
    images = _images((3, 3, 17, 23))
    before = images.clone()
    spec(images, _magnitudes(spec, 3), generator=_generator())
    assert torch.equal(images, before)


@pytest.mark.parametrize("name", MAGNITUDE_OPS)
def test_level_zero_is_identity(name: str) -> None:
    spec = get_op(name)
    images = _images((4, 3, 17, 23))
    out = spec(images, spec.magnitude(torch.zeros(4)), generator=_generator())
    if name in WARPS:
        torch.testing.assert_close(out, images, atol=1e-5, rtol=0)
    else:
        assert torch.equal(out, images)


@pytest.mark.parametrize("name", ["Identity", "HorizontalFlip", "VerticalFlip", "Invert"])
def test_ops_without_magnitude_ignore_the_level(name: str) -> None:
    spec = get_op(name)
    assert not spec.has_magnitude
    assert torch.equal(spec.magnitude(torch.rand(5)), torch.zeros(5))


@pytest.mark.parametrize("name", DETERMINISTIC_OPS)
def test_per_sample_equals_alone(name: str) -> None:
    spec = get_op(name)
    images = _images((5, 3, 17, 23))
    # Distinct magnitudes, including 0, the extremes and both signs.
    levels = torch.tensor([0.0, 1.0, 0.25, 0.6, 0.9])
    mags = spec.magnitude(levels)
    if spec.signed:
        mags = mags * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    batch = spec(images, mags)
    for i in range(images.shape[0]):
        alone = spec(images[i : i + 1], mags[i : i + 1])
        # Convolutions may pick another algorithm for another batch size: rounding only.
        torch.testing.assert_close(batch[i : i + 1], alone, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", RANDOM_OPS)
def test_random_ops_are_reproducible_with_a_seed(name: str) -> None:
    spec = get_op(name)
    images = _images((4, 3, 17, 23))
    mags = spec.magnitude(torch.full((4,), 0.8))
    first = spec(images, mags, generator=_generator(7))
    again = spec(images, mags, generator=_generator(7))
    other = spec(images, mags, generator=_generator(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.shape == images.shape
    assert 0.0 <= first.min() <= first.max() <= 1.0


@pytest.mark.parametrize("name", RANDOM_OPS)
def test_random_ops_leave_zero_magnitude_images_alone(name: str) -> None:
    spec = get_op(name)
    images = _images((4, 3, 17, 23))
    mags = spec.magnitude(torch.tensor([0.0, 1.0, 0.0, 0.7]))
    out = spec(images, mags, generator=_generator(3))
    torch.testing.assert_close(out[0::2], images[0::2], atol=1e-5, rtol=0)
    assert not torch.allclose(out[1::2], images[1::2], atol=1e-3)


@pytest.mark.parametrize("name", RANDOM_OPS)
def test_random_ops_do_not_touch_global_rng(name: str) -> None:
    spec = get_op(name)
    state = torch.get_rng_state()
    spec(_images((2, 3, 8, 8)), spec.magnitude(torch.ones(2)), generator=_generator())
    spec(_images((2, 3, 8, 8)), spec.magnitude(torch.ones(2)))
    assert torch.equal(torch.get_rng_state(), state)


def test_identity_returns_the_images() -> None:
    images = _images((2, 3, 5, 7))
    assert torch.equal(get_op("Identity")(images, torch.zeros(2)), images)


@pytest.mark.parametrize("name", ["Color", "Hue", "Grayscale"])
def test_colour_ops_leave_grayscale_images_unchanged(name: str) -> None:
    spec = get_op(name)
    images = _images((3, 1, 17, 23))
    assert torch.equal(spec(images, spec.magnitude(torch.ones(3))), images)


def test_grayscale_channels_are_equal() -> None:
    out = get_op("Grayscale")(_images((2, 3, 9, 9)), torch.zeros(2))
    assert torch.equal(out[:, 0], out[:, 1])
    assert torch.equal(out[:, 0], out[:, 2])


@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_memory_layout_does_not_matter(name: str) -> None:
    # Regression: Equalize used `.view` and raised on non-contiguous input.
    spec = get_op(name)
    images = _images((3, 3, 17, 23))
    mags = _magnitudes(spec, 3)
    expected = spec(images, mags, generator=_generator())
    layouts = {
        "channels_last": images.contiguous(memory_format=torch.channels_last),
        "transposed": images.transpose(-1, -2).contiguous().transpose(-1, -2),
    }
    for layout, view in layouts.items():
        out = spec(view, mags, generator=_generator())
        torch.testing.assert_close(out, expected, atol=1e-6, rtol=0, msg=layout)


# --- Ops without a torchvision counterpart: invariants ------------------------------------------


def _filled_boxes(images: torch.Tensor, out: torch.Tensor) -> list[tuple[int, int, int, int]]:
    """Bounding box (top, bottom, left, right) of each image's changed pixels; check they form a
    solid box of mid-gray in every channel and nothing else changed."""
    boxes = []
    for before, after in zip(images, out, strict=True):
        changed = (after != before).any(0)
        rows = torch.nonzero(changed.any(1)).flatten()
        cols = torch.nonzero(changed.any(0)).flatten()
        top, bottom = int(rows.min()), int(rows.max()) + 1
        left, right = int(cols.min()), int(cols.max()) + 1
        box = after[:, top:bottom, left:right]
        assert torch.equal(box, torch.full_like(box, 0.5))
        outside = changed.clone()
        outside[top:bottom, left:right] = False
        assert not outside.any()
        boxes.append((top, bottom, left, right))
    return boxes


@pytest.mark.parametrize(
    ("shape", "level", "sides"),
    [
        ((64, 3, 32, 32), 0.5, (8,)),  # 0.25 of 32 px: exactly 8 px
        ((64, 1, 17, 23), 0.8, (6, 7)),  # 0.4 of the shorter side 17: 6.8 px
        ((64, 3, 32, 32), 1.0, (16,)),  # DeVries & Taylor's 16 px on 32x32
    ],
)
def test_cutout_fills_a_square_of_the_expected_side(
    shape: tuple[int, ...], level: float, sides: tuple[int, ...]
) -> None:
    spec = get_op("Cutout")
    images = _images(shape)  # multiples of 1/255: never exactly 0.5
    out = spec(images, spec.magnitude(torch.full((shape[0],), level)), generator=_generator(5))
    h, w = shape[-2:]
    inside = 0
    for top, bottom, left, right in _filled_boxes(images, out):
        height, width = bottom - top, right - left
        if top > 0 and left > 0 and bottom < h and right < w:
            inside += 1
            # A side of s px covers floor(s) or ceil(s) pixel centres in each direction.
            assert height in sides
            assert width in sides
        else:  # clipped by the border
            assert height <= max(sides)
            assert width <= max(sides)
    assert inside >= shape[0] // 8  # P(fully inside) = (1 - side/H)(1 - side/W) >= 1/4


def test_cutout_positions_cover_the_image() -> None:
    spec = get_op("Cutout")
    # Side 8 px on 16x16: the centre is uniform over the image, so even the corner pixels are
    # covered with probability (4.5 / 16) ** 2 per image.
    images = _images((256, 1, 16, 16))
    out = spec(images, spec.magnitude(torch.ones(256)), generator=_generator(1))
    covered = (out != images).any(1).any(0)
    assert covered.all()


@pytest.mark.parametrize("level", [0.25, 0.5, 1.0])
def test_gaussian_noise_std_matches_magnitude(level: float) -> None:
    spec = get_op("GaussianNoise")
    images = torch.full((4, 3, 64, 64), 0.5)
    mags = spec.magnitude(torch.full((4,), level))
    diff = spec(images, mags, generator=_generator(11)) - images
    std = diff.flatten(1).std(dim=1)
    mean = diff.flatten(1).mean(dim=1)
    # At m = 0.2 clamping at 0 and 1 (2.5 sigma away) shrinks the std by about 3%.
    torch.testing.assert_close(std, mags, rtol=0.05, atol=0)
    assert mean.abs().max() < 0.01


def test_gaussian_noise_sign_of_magnitude_is_ignored() -> None:
    spec = get_op("GaussianNoise")
    images = _images((2, 3, 8, 8))
    mags = torch.tensor([0.1, 0.1])
    out = spec(images, mags, generator=_generator(4))
    assert torch.equal(out, spec(images, -mags, generator=_generator(4)))


def test_perspective_keeps_the_centre_covered() -> None:
    # Corners move inwards by at most m/2 of the side, so for m = 0.5 the quadrilateral always
    # contains the central half of the image (a pixel margin for bilinear edges).
    spec = get_op("Perspective")
    ones = torch.ones(64, 1, 32, 32)
    out = spec(ones, spec.magnitude(torch.ones(64)), generator=_generator(2))
    torch.testing.assert_close(out[..., 9:23, 9:23], ones[..., 9:23, 9:23], atol=1e-6, rtol=0)
    # ... and it does cut away some of the border in every image.
    assert ((out < 1).flatten(1).sum(1) > 0).all()


# --- Devices ------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_cuda_matches_cpu(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # cuDNN convolutions default to TF32 on Ampere and later (~1e-3 error); compare in full
    # float32 so that the tolerance checks the kernel, not the hardware's precision mode.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    spec = get_op(name)
    images = _images((4, 3, 17, 23))
    mags = _magnitudes(spec, 4)
    # Random ops draw on the generator's device, so a CPU generator gives the same draws.
    expected = spec(images, mags, generator=_generator(9))
    for mags_device in ("cpu", "cuda"):
        out = spec(images.cuda(), mags.to(mags_device), generator=_generator(9))
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), expected, atol=1e-5, rtol=0)
