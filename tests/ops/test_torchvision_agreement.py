"""Each built-in op against its torchvision v2 counterpart, on single images.

Conventions found while writing these tests (they are also in the kernels' docstrings):

* Warps use torchvision's ``fill=None`` (plain zero padding in ``grid_sample``). torchvision's
  ``fill=0`` additionally multiplies partially covered border pixels by their coverage, so it is
  darker along the edges of the warped image; ``test_warp_fill_zero_differs_only_at_edges``
  pins that down.
* torchvision's AutoAugment ShearX is ``shear=[degrees(atan(m)), 0]`` with ``center=[0, 0]``
  (the top-left corner), ShearY ``shear=[0, degrees(atan(m))]``; translations are integer pixels
  there and fractions of the side here.
* Perspective corners: ``warp_perspective`` takes corners in centred pixel units (image edges at
  ``+-W/2``, ``+-H/2``); torchvision's perspective frame is the same shifted by ``(W/2, H/2)``
  (PIL convention: the image's top-left edge at 0, pixel centres at ``i + 0.5``). So the
  unwarped corners are ``startpoints=[[0, 0], [W, 0], [W, H], [0, H]]``, not the ``W - 1`` that
  ``RandomPerspective`` uses.
* Solarize at threshold 1 is the identity here (level 0 must be a no-op) while torchvision
  inverts pure white: ``test_solarize_threshold_one_is_identity_by_design``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms.v2 import InterpolationMode

from evoaug.ops import get_op
from evoaug.ops._geometric import warp_perspective

BILINEAR = InterpolationMode.BILINEAR
H, W = 17, 23  # non-square, odd sides: catches swapped axes and half-pixel offsets

# op -> (max abs error, mean abs error) allowed, in [0, 1] intensity units.
TOLERANCES: dict[str, tuple[float, float]] = {
    # Exact: pure indexing, or integer arithmetic on 8-bit levels (compared as uint8).
    "HorizontalFlip": (0.0, 0.0),
    "VerticalFlip": (0.0, 0.0),
    "Invert": (0.0, 0.0),
    "Posterize": (0.0, 0.0),
    "Equalize": (0.0, 0.0),
    "Solarize": (0.0, 0.0),
    # Same formula, float32 evaluation order differs (e.g. multiply by 1/span vs divide):
    # a few ulps.
    "Brightness": (1e-6, 1e-7),
    "Contrast": (1e-6, 1e-7),
    "Color": (1e-6, 1e-7),
    "Sharpness": (1e-6, 1e-7),
    "AutoContrast": (1e-6, 1e-7),
    "Grayscale": (1e-6, 1e-7),
    # HSV round trip written differently (sector table vs torchvision's masks); measured 1.2e-6.
    "Hue": (1e-5, 1e-6),
    # Same Gaussian taps and reflect padding; separable 1-D passes vs torchvision's: rounding.
    "GaussianBlur": (1e-5, 1e-6),
    # Same bilinear grid_sample with zero padding; the sampling grids are built differently
    # (affine_grid / our homography vs torchvision's base grid times theta), which moves sample
    # points by ~1e-6 px. With torchvision's fill=None every pixel agrees, borders included, so
    # no interior-only comparison is needed; measured max 3.3e-6.
    "ShearX": (1e-5, 1e-6),
    "ShearY": (1e-5, 1e-6),
    "TranslateX": (1e-5, 1e-6),
    "TranslateY": (1e-5, 1e-6),
    "Rotate": (1e-5, 1e-6),
    "Zoom": (1e-5, 1e-6),
    "Perspective": (1e-5, 1e-6),
}
# Ops compared in 8-bit levels: torchvision runs them on the uint8 image.
UINT8_OPS = ("Posterize", "Equalize")

Reference = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def _uint8_image(channels: int, seed: int = 0, h: int = H, w: int = W) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (channels, h, w), generator=g, dtype=torch.uint8)


def _affine(x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    params: dict[str, Any] = {"angle": 0.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0]}
    params.update(kwargs)
    out: torch.Tensor = TF.affine(x, **params, interpolation=BILINEAR, fill=None)
    return out


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = 2 * math.ceil(3 * sigma) + 1
    out: torch.Tensor = TF.gaussian_blur(x, [k, k], [sigma, sigma])
    return out


# op -> (magnitudes, reference(x_float, x_uint8, magnitude) -> float image or uint8 image)
REFERENCES: dict[str, tuple[tuple[float, ...], Reference]] = {
    "ShearX": (
        (-0.99, -0.3, 0.1, 0.5, 0.99),
        lambda x, u, m: _affine(x, shear=[math.degrees(math.atan(m)), 0.0], center=[0, 0]),
    ),
    "ShearY": (
        (-0.99, -0.3, 0.1, 0.5, 0.99),
        lambda x, u, m: _affine(x, shear=[0.0, math.degrees(math.atan(m))], center=[0, 0]),
    ),
    # Fractions of the width / height that are whole pixels: -5, -1, 3, 8 px.
    "TranslateX": (
        (-5 / W, -1 / W, 3 / W, 8 / W),
        lambda x, u, m: _affine(x, translate=[round(m * W), 0]),
    ),
    "TranslateY": (
        (-5 / H, -1 / H, 3 / H, 8 / H),
        lambda x, u, m: _affine(x, translate=[0, round(m * H)]),
    ),
    "Rotate": (
        (-135.0, -30.0, 10.0, 45.0, 90.0, 135.0),
        lambda x, u, m: TF.rotate(x, m, interpolation=BILINEAR, fill=None),
    ),
    "Zoom": ((-0.4, -0.25, 0.1, 0.4), lambda x, u, m: _affine(x, scale=1.0 + m)),
    "HorizontalFlip": ((0.0,), lambda x, u, m: TF.horizontal_flip(x)),
    "VerticalFlip": ((0.0,), lambda x, u, m: TF.vertical_flip(x)),
    "Brightness": ((-0.99, -0.5, 0.3, 0.99), lambda x, u, m: TF.adjust_brightness(x, 1 + m)),
    "Contrast": ((-0.99, -0.5, 0.3, 0.99), lambda x, u, m: TF.adjust_contrast(x, 1 + m)),
    "Color": ((-0.99, -0.5, 0.3, 0.99), lambda x, u, m: TF.adjust_saturation(x, 1 + m)),
    "Sharpness": ((-0.99, -0.5, 0.3, 0.99), lambda x, u, m: TF.adjust_sharpness(x, 1 + m)),
    "Posterize": ((8.0, 7.0, 6.0, 4.0, 2.0), lambda x, u, m: TF.posterize(u, int(m))),
    # Threshold 1.0 is excluded: see test_solarize_threshold_one_is_identity_by_design.
    "Solarize": ((0.0, 0.25, 0.5, 0.99), lambda x, u, m: TF.solarize(x, m)),
    "AutoContrast": ((0.0,), lambda x, u, m: TF.autocontrast(x)),
    "Equalize": ((0.0,), lambda x, u, m: TF.equalize(u)),
    "Invert": ((0.0,), lambda x, u, m: TF.invert(x)),
    "Hue": ((-0.5, -0.25, 0.1, 0.33, 0.5), lambda x, u, m: TF.adjust_hue(x, m)),
    "GaussianBlur": ((0.3, 0.5, 1.0, 1.7, 2.0), lambda x, u, m: _blur(x, m)),
    "Grayscale": ((0.0,), lambda x, u, m: TF.rgb_to_grayscale(x, num_output_channels=3)),
}
# Ops without a torchvision counterpart get invariant tests in test_kernels.py; Perspective is
# compared through `warp_perspective` below (its public op draws random corners).
NO_COUNTERPART = ("Identity", "Cutout", "GaussianNoise", "Perspective")

CASES = [
    pytest.param(name, m, c, id=f"{name}-{m:g}-c{c}")
    for name, (mags, _) in REFERENCES.items()
    for m in mags
    for c in ((3,) if name == "Grayscale" else (1, 3))
]


def _assert_agrees(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
    if theirs.dtype == torch.uint8:
        # Compared in 8-bit levels: our float result must sit on the 8-bit grid.
        ours_255 = ours * 255.0
        assert (ours_255 - ours_255.round()).abs().max() < 1e-3
        ours, theirs = ours_255.round(), theirs.to(ours.dtype)
    max_err, mean_err = TOLERANCES[name]
    err = (ours - theirs).abs()
    assert err.max() <= max_err, f"{name}: max abs error {err.max():.3g} > {max_err}"
    assert err.mean() <= mean_err, f"{name}: mean abs error {err.mean():.3g} > {mean_err}"


def test_every_op_is_covered() -> None:
    from evoaug.ops import BUILTIN_OPS

    assert set(REFERENCES) | set(NO_COUNTERPART) == set(BUILTIN_OPS)
    assert set(TOLERANCES) == set(REFERENCES) | {"Perspective"}


@pytest.mark.parametrize(("name", "magnitude", "channels"), CASES)
def test_agrees_with_torchvision(name: str, magnitude: float, channels: int) -> None:
    u8 = _uint8_image(channels)
    x = u8.float() / 255.0
    ours = get_op(name)(x[None], torch.tensor([magnitude]))[0]
    theirs = REFERENCES[name][1](x, u8, magnitude)
    _assert_agrees(name, ours, theirs)


@pytest.mark.parametrize("levels", [1, 2, 3, 17, 256])
@pytest.mark.parametrize("name", [*UINT8_OPS, "AutoContrast"])
def test_histogram_ops_agree_on_few_levels(name: str, levels: int) -> None:
    # Few distinct levels hit Equalize's corner cases (one bin, step 0) and constant channels.
    g = torch.Generator().manual_seed(levels)
    u8 = (torch.randint(0, levels, (3, H, W), generator=g) * (255 // max(levels - 1, 1))).to(
        torch.uint8
    )
    u8[1] = 200  # a constant channel
    x = u8.float() / 255.0
    magnitude = 4.0 if name == "Posterize" else 0.0
    ours = get_op(name)(x[None], torch.tensor([magnitude]))[0]
    theirs = REFERENCES[name][1](x, u8, magnitude)
    _assert_agrees(name, ours, theirs)


def test_batched_calls_agree_with_torchvision_per_image() -> None:
    # Per-sample magnitudes in one call, each compared with torchvision at its own magnitude.
    x = torch.stack([_uint8_image(3, seed=s) for s in range(4)]).float() / 255.0
    mags = torch.tensor([-30.0, 0.0, 45.0, 135.0])
    out = get_op("Rotate")(x, mags)
    for i, m in enumerate(mags.tolist()):
        _assert_agrees("Rotate", out[i], TF.rotate(x[i], m, interpolation=BILINEAR, fill=None))


# Integer shifts of the four corners (x, y), top-left, top-right, bottom-right, bottom-left.
PERSPECTIVE_SHIFTS = [
    [[0, 0], [0, 0], [0, 0], [0, 0]],
    [[2, 1], [-3, 2], [-1, -4], [4, -2]],
    [[5, 5], [-5, 5], [-5, -5], [5, -5]],
    [[-2, -1], [3, 0], [0, 2], [1, 1]],
]


@pytest.mark.parametrize("shifts", PERSPECTIVE_SHIFTS)
def test_warp_perspective_agrees_with_torchvision(shifts: list[list[int]]) -> None:
    x = _uint8_image(3).float() / 255.0
    startpoints = [[0, 0], [W, 0], [W, H], [0, H]]
    endpoints = [[sx + dx, sy + dy] for (sx, sy), (dx, dy) in zip(startpoints, shifts, strict=True)]
    corners = torch.tensor(endpoints, dtype=torch.float32) - torch.tensor([W / 2, H / 2])
    ours = warp_perspective(x[None], corners[None])[0]
    theirs = TF.perspective(x, startpoints, endpoints, interpolation=BILINEAR, fill=None)
    _assert_agrees("Perspective", ours, theirs)


@pytest.mark.parametrize("name", ["Rotate", "ShearX", "Zoom"])
def test_warp_fill_zero_differs_only_at_edges(name: str) -> None:
    # torchvision's fill=0 re-multiplies partially covered pixels by their coverage.
    magnitude = {"Rotate": 30.0, "ShearX": 0.5, "Zoom": -0.3}[name]
    x = _uint8_image(3).float() / 255.0
    reference = REFERENCES[name][1]
    coverage = reference(torch.ones(1, H, W), torch.empty(0), magnitude)
    full = (coverage > 1 - 1e-6).expand_as(x)
    assert 0 < full.sum() < full.numel()
    ours = get_op(name)(x[None], torch.tensor([magnitude]))[0]
    params = {
        "Rotate": lambda img: TF.rotate(img, magnitude, interpolation=BILINEAR, fill=0.0),
        "ShearX": lambda img: TF.affine(
            img,
            angle=0.0,
            translate=[0, 0],
            scale=1.0,
            shear=[math.degrees(math.atan(magnitude)), 0.0],
            interpolation=BILINEAR,
            fill=0.0,
            center=[0, 0],
        ),
        "Zoom": lambda img: TF.affine(
            img,
            angle=0.0,
            translate=[0, 0],
            scale=1.0 + magnitude,
            shear=[0.0],
            interpolation=BILINEAR,
            fill=0.0,
        ),
    }
    theirs = params[name](x)
    torch.testing.assert_close(ours[full], theirs[full], atol=1e-5, rtol=0)
    # Elsewhere torchvision's result is the darker one, by the coverage factor.
    partial = ~full
    torch.testing.assert_close(
        theirs[partial], ours[partial] * coverage.expand_as(x)[partial], atol=1e-5, rtol=0
    )


def test_solarize_threshold_one_is_identity_by_design() -> None:
    x = _uint8_image(3).float() / 255.0
    x[:, 0, :5] = 1.0  # some pure-white pixels
    ours = get_op("Solarize")(x[None], torch.tensor([1.0]))[0]
    assert torch.equal(ours, x)
    theirs = TF.solarize(x, 1.0)
    assert torch.equal(theirs[x < 1.0], x[x < 1.0])
    assert torch.equal(theirs[x == 1.0], torch.zeros_like(theirs[x == 1.0]))
