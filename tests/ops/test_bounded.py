"""Bounded kernels: a kernel that sizes its work from its magnitudes, sized from a bound instead."""

from __future__ import annotations

import pytest
import torch

from evoaug.ops import BUILTIN_OPS, bounded_kernel, get_op

SIZES = [(17, 23), (5, 3), (2, 2), (1, 7), (48, 40)]


def _batch(size: tuple[int, int], dtype: torch.dtype, top: float) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(12, 3, *size, generator=g).to(dtype)
    sigma = torch.rand(12, generator=g) * top
    sigma[0] = 0.0
    return images, sigma


# float64 convolutions are slow on the CPU (~1 s per call at 48x40): one small size.
@pytest.mark.parametrize(
    ("size", "dtype"),
    [(size, torch.float32) for size in SIZES] + [((5, 3), torch.float64)],
)
def test_bounded_blur_sized_from_the_largest_sigma_is_the_blur(
    size: tuple[int, int], dtype: torch.dtype
) -> None:
    spec, bounded = get_op("GaussianBlur"), bounded_kernel(get_op("GaussianBlur"))
    assert bounded is not None
    for top in (0.3, 1.0, 2.0, 0.0):
        images, sigma = _batch(size, dtype, top)
        largest = float(sigma.abs().max())
        assert torch.equal(bounded(images, sigma, largest), spec(images, sigma))
        # A wider convolution: the extra taps are zero, the sums round differently.
        wide = bounded(images, sigma, 2.0)
        torch.testing.assert_close(wide, spec(images, sigma), atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", SIZES)
def test_bounded_blur_of_an_image_does_not_depend_on_the_batch(size: tuple[int, int]) -> None:
    """What makes both paths agree: an image gets the same bits alone or among others."""
    bounded = bounded_kernel(get_op("GaussianBlur"))
    assert bounded is not None
    images, sigma = _batch(size, torch.float32, 1.7)
    whole = bounded(images, sigma, 1.7)
    for index in ([0], [3, 4, 9], list(range(1, 12, 2))):
        assert torch.equal(bounded(images[index], sigma[index], 1.7), whole[index])


def test_bounded_blur_reads_no_value() -> None:
    bounded = bounded_kernel(get_op("GaussianBlur"))
    assert bounded is not None
    images = torch.empty(4, 3, 9, 9, device="meta")
    assert bounded(images, torch.empty(4, device="meta"), 2.0).shape == images.shape


def test_only_kernels_sized_from_the_data_have_a_bounded_kernel() -> None:
    have = [name for name in BUILTIN_OPS if bounded_kernel(get_op(name)) is not None]
    assert have == ["GaussianBlur"]


@pytest.mark.parametrize("size", [*SIZES, (64, 64), (66, 70)])
@pytest.mark.parametrize("channels", [1, 3])
def test_small_images_blur_by_banded_products_as_the_convolution_does(
    size: tuple[int, int], channels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to 64x64 pixels the blur is two matrix products; the convolution gives the same."""
    from evoaug.ops import _color

    spec = get_op("GaussianBlur")
    images, sigma = _batch(size, torch.float32, 2.0)
    images = images[:, :channels]
    default = spec(images, sigma)
    monkeypatch.setattr(_color, "_BANDED_PIXELS", 0)  # every size by convolution
    convolved = spec(images, sigma)
    torch.testing.assert_close(default, convolved, atol=1e-6, rtol=0)
    assert torch.equal(default[0], images[0])  # sigma 0: the image itself, on both
    if size[0] * size[1] > 64 * 64:
        assert torch.equal(default, convolved)  # the convolution ran both times
    elif min(size) >= 5:
        assert not torch.equal(default, convolved)  # the products ran: sums rounded otherwise
