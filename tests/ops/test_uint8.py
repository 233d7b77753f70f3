"""uint8 kernels: the op table's exact ones, `register_op(uint8=...)`, and their use by policies."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import torch

import evoaug
from evoaug import Policy
from evoaug.ops import get_op
from evoaug.ops._color import equalize_levels, equalize_lut

UINT8_OPS = ("Posterize", "Solarize", "Equalize", "Invert")

calls: list[int] = []  # the images per call of the counting uint8 kernel of `darken_ops`


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _rounded(spec: evoaug.OpSpec, images: torch.Tensor, mags: torch.Tensor) -> torch.Tensor:
    """The float kernel on ``images / 255``, rounded to 8 bits: what ``uint8`` must equal."""
    return (spec(images.float() / 255, mags) * 255).round().to(torch.uint8)


def _images(n: int, channels: int, seed: int = 0) -> torch.Tensor:
    images = torch.randint(0, 256, (n, channels, 9, 11), dtype=torch.uint8, generator=_gen(seed))
    images[:4] = 7  # flat images: Equalize leaves them alone
    images[4:8, :, :, :5] = 255  # two levels only
    return images


def _darken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    return images * (1 - magnitudes.view(-1, 1, 1, 1))


def _darken_uint8(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    return _rounded(get_op("TestUint8DarkenRef"), images, magnitudes)


def test_exactly_these_ops_declare_uint8() -> None:
    declared = {name for name in evoaug.ops.BUILTIN_OPS if get_op(name).uint8 is not None}
    assert declared == set(UINT8_OPS)


@pytest.mark.parametrize("name", UINT8_OPS)
@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_kernel_equals_the_rounded_float_kernel(name: str, channels: int) -> None:
    spec = get_op(name)
    images = _images(300, channels)
    levels = torch.cat([torch.linspace(0, 1, 101), torch.rand(199, generator=_gen(1))])
    mags = spec.magnitude(levels)
    before = images.clone()
    out = spec.apply_uint8(images, mags)
    assert out.dtype == torch.uint8
    assert torch.equal(out, _rounded(spec, images, mags))
    assert torch.equal(images, before)  # not modified


def test_solarize_uint8_at_every_threshold_next_to_a_level() -> None:
    # Thresholds at, just above and just below each level's float value: where the float
    # comparison flips.
    levels = torch.arange(256) / 255.0
    thresholds = torch.cat(
        [
            levels,
            torch.nextafter(levels, torch.tensor(2.0)),
            torch.nextafter(levels, torch.tensor(-1.0)),
            torch.tensor([0.0, 1.0, 0.5]),
        ]
    )
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    images = images.expand(len(thresholds), 3, 16, 16).contiguous()
    spec = get_op("Solarize")
    out = spec.apply_uint8(images, thresholds)
    assert torch.equal(out, _rounded(spec, images, thresholds))
    assert torch.equal(out[-2], images[-2])  # threshold 1: no change
    assert torch.equal(out[-3], 255 - images[-3])  # threshold 0: all inverted


@pytest.mark.parametrize("bits", [0, 1, 4, 7, 8])
def test_posterize_uint8_keeps_the_top_bits(bits: int) -> None:
    images = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    out = get_op("Posterize").apply_uint8(images, torch.tensor([float(bits)]))
    assert torch.equal(out, images.bitwise_right_shift(8 - bits).bitwise_left_shift(8 - bits))


def test_apply_uint8_without_a_kernel_raises() -> None:
    with pytest.raises(evoaug.OpError, match="op 'Rotate' has no `uint8` kernel"):
        get_op("Rotate").apply_uint8(_images(2, 3), torch.zeros(2))


@pytest.mark.parametrize("uint8", [3, "invert", [_darken]])
def test_uint8_must_be_callable(custom_name: str, uint8: object) -> None:
    with pytest.raises(evoaug.ConfigError, match="`uint8` must be a function"):
        evoaug.register_op(custom_name, uint8=uint8)  # type: ignore[arg-type]
    assert custom_name not in evoaug.available_ops()


def test_uint8_kernels_cannot_come_with_affine(custom_name: str) -> None:
    with pytest.raises(evoaug.ConfigError, match="an op with `affine` is warped in float"):
        evoaug.register_op(custom_name, affine=get_op("Rotate").affine, uint8=_darken_uint8)
    assert custom_name not in evoaug.available_ops()


def test_uint8_kernels_cannot_come_with_a_generator(
    custom_name: str, generator_kernel: Callable[..., torch.Tensor]
) -> None:
    with pytest.raises(evoaug.ConfigError, match="the kernel cannot take a `generator`"):
        evoaug.register_op(custom_name, uint8=_darken_uint8)(generator_kernel)
    assert custom_name not in evoaug.available_ops()


@pytest.mark.parametrize(
    ("uint8", "message"),
    [
        (
            lambda images, mags: images.float(),
            r"`uint8` must return a torch.uint8 tensor .* got torch.float32",
        ),
        (
            lambda images, mags: images[:, :, 1:],
            r"tensor of shape \(2, 3, 9, 11\), got torch.uint8 \(2, 3, 8, 11\)",
        ),
        (lambda images, mags: images.tolist(), "`uint8` must return .*got list"),
        (lambda images, mags: 1 // 0, "`uint8` raised ZeroDivisionError"),
    ],
)
def test_bad_uint8_kernels_raise_op_error(custom_name: str, uint8: object, message: str) -> None:
    evoaug.register_op(custom_name, uint8=uint8)(_darken)  # type: ignore[arg-type]
    with pytest.raises(evoaug.OpError, match=f"op {re.escape(repr(custom_name))}: .*{message}"):
        get_op(custom_name).apply_uint8(_images(2, 3), torch.zeros(2))


@pytest.fixture
def darken_ops() -> Iterator[tuple[str, str]]:
    """``TestUint8Darken`` with a counting ``uint8`` kernel, and its float-only twin."""
    evoaug.register_op("TestUint8DarkenRef", high=0.5)(_darken)
    calls.clear()

    def counted(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        calls.append(images.shape[0])
        return _darken_uint8(images, magnitudes)

    evoaug.register_op("TestUint8Darken", high=0.5, uint8=counted)(_darken)
    yield "TestUint8Darken", "TestUint8DarkenRef"
    evoaug.ops.unregister_op("TestUint8Darken")
    evoaug.ops.unregister_op("TestUint8DarkenRef")


def test_policies_apply_uint8_kernels_to_uint8_images_only(darken_ops: tuple[str, str]) -> None:
    native, reference = darken_ops
    genes = [
        [("Rotate", 0.5, 0.4), (native, 0.8, 0.7)],
        [(native, 1.0, 0.3), ("Sharpness", 1.0, 0.6)],
    ]
    policy = Policy.from_genes(genes)
    twin = Policy.from_genes(
        [[(reference if g[0] == native else g[0], *g[1:]) for g in s] for s in genes]
    )
    images = _images(64, 3)
    out = policy(images, generator=_gen(2))
    assert calls and sum(calls) > 32  # the uint8 kernel did the work ...
    assert torch.equal(out, twin(images, generator=_gen(2)))  # ... and gave the same bytes
    calls.clear()
    floats = images.float() / 255
    assert torch.equal(policy(floats, generator=_gen(2)), twin(floats, generator=_gen(2)))
    assert not calls  # float images: the float kernel


def test_one_uint8_op_on_every_image_leaves_the_input_alone(darken_ops: tuple[str, str]) -> None:
    native, _ = darken_ops
    images = _images(16, 3)
    before = images.clone()
    out = Policy.from_genes([[(native, 1.0, 0.8)]])(images, generator=_gen())
    assert calls == [16]
    assert torch.equal(images, before)
    assert out.untyped_storage().data_ptr() != images.untyped_storage().data_ptr()
    assert torch.equal(out, _rounded(get_op("TestUint8DarkenRef"), images, torch.full((16,), 0.4)))


@pytest.mark.parametrize("preset", ["trivialaugment", "randaugment", "autoaugment-imagenet"])
def test_builtin_uint8_kernels_give_the_float_kernels_bytes_in_policies(preset: str) -> None:
    policy = Policy.preset(preset)
    images = _images(200, 3, seed=3)
    out = policy(images, generator=_gen(4))
    # The same policy with the uint8 kernels switched off: every op in float, rounded per gene.
    originals = {name: get_op(name) for name in UINT8_OPS}
    try:
        for spec in originals.values():
            evoaug.register_op(
                spec.name, low=spec.low, high=spec.high, signed=spec.signed, replace=True
            )(spec.fn)
        assert all(get_op(name).uint8 is None for name in UINT8_OPS)
        assert torch.equal(out, policy(images, generator=_gen(4)))
    finally:
        for spec in originals.values():
            evoaug.register_op(
                spec.name,
                low=spec.low,
                high=spec.high,
                signed=spec.signed,
                description=spec.description,
                replace=True,
                uint8=spec.uint8,
            )(spec.fn)
    assert all(get_op(name) == spec for name, spec in originals.items())


def _equalize_lut_int64(levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's equalization tables in plain int64 arithmetic: the reference for the float64 one."""
    b, c, n = levels.shape
    hist = torch.zeros(b, c, 256, dtype=torch.int64).scatter_add_(
        -1, levels, torch.ones_like(levels)
    )
    cum = hist.cumsum(-1)
    last = cum.argmax(-1, keepdim=True)
    step = torch.div(n - hist.gather(-1, last), 255, rounding_mode="floor")
    lut = torch.div(cum[..., :-1] + step // 2, step.clamp_min(1), rounding_mode="floor")
    return torch.cat([torch.zeros_like(lut[..., :1]), lut.clamp(0, 255)], dim=-1), step


@pytest.mark.parametrize("pixels", [4, 1000, 50176, 1 << 20])
def test_equalize_lut_equals_the_integer_reference(pixels: int) -> None:
    g = _gen(pixels)
    levels = torch.randint(0, 256, (3, 2, pixels), generator=g)
    levels[0, 0] = 9  # one level: step 0
    levels[0, 1] = torch.randint(250, 256, (pixels,), generator=g)  # a few bright levels
    levels[1, 0] = torch.randint(0, 3, (pixels,), generator=g) * 100
    lut, step = equalize_lut(levels)
    expected_lut, expected_step = _equalize_lut_int64(levels)
    assert lut.dtype == torch.float64
    assert torch.equal(lut.long(), expected_lut)
    assert torch.equal(step.long(), expected_step)
    assert step[0, 0].item() == 0


@pytest.mark.parametrize("pixels", [1000, 50176])
def test_equalize_levels_in_chunks_equals_one_table_per_channel(pixels: int) -> None:
    """Channels are equalized a cache-sized chunk at a time; the result must not show it."""
    g = _gen(pixels)
    rows = 2 * max(1, (1 << 18) // pixels) + 3  # two full chunks and a partial one
    levels = torch.randint(0, 256, (rows, pixels), dtype=torch.uint8, generator=g)
    levels[1] = 9  # one level: unchanged
    levels[-1] = torch.randint(0, 3, (pixels,), dtype=torch.uint8, generator=g) * 100
    out, unchanged = equalize_levels(levels)
    lut, step = _equalize_lut_int64(levels.long().unsqueeze(0))
    expected = torch.where(step[0] == 0, levels.long(), lut[0].gather(-1, levels.long()))
    assert out.dtype == torch.uint8
    assert torch.equal(out.long(), expected)
    assert unchanged.tolist() == (step[0, :, 0] == 0).tolist()
    assert unchanged[1] and not unchanged[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", UINT8_OPS)
def test_uint8_kernels_on_cuda_equal_the_cpu(name: str) -> None:
    spec = get_op(name)
    images = _images(300, 3)
    mags = spec.magnitude(torch.rand(300, generator=_gen(2)))
    expected = spec.apply_uint8(images, mags)
    out = spec.apply_uint8(images.cuda(), mags.cuda())
    assert out.device.type == "cuda"
    assert torch.equal(out.cpu(), expected)
    assert torch.equal(out.cpu(), _rounded(spec, images, mags))
