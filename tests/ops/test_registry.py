"""The op registry: register_op, get_op, OpSpec's level <-> magnitude mapping and call checks."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch

import evoaug
from evoaug.ops import BUILTIN_OPS, get_op, unregister_op


def _darken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
    return images * (1 - magnitudes.view(-1, 1, 1, 1))


def _images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_register_op_adds_an_op_usable_by_name(custom_name: str) -> None:
    returned = evoaug.register_op(custom_name, low=0.0, high=0.5, description="darker")(_darken)
    assert returned is _darken
    assert custom_name in evoaug.available_ops()
    assert evoaug.available_ops() == sorted(evoaug.available_ops())
    spec = evoaug.get_op(custom_name)
    assert (spec.name, spec.low, spec.high, spec.signed) == (custom_name, 0.0, 0.5, False)
    assert spec.description == "darker"
    assert not spec.takes_generator
    images = _images()
    torch.testing.assert_close(spec(images, torch.full((3,), 0.5)), images * 0.5)
    # ... and in a policy, by name.
    policy = evoaug.Policy.from_dict(
        {
            "format_version": 1,
            "sub_policies": [[{"op": custom_name, "probability": 1.0, "level": 1.0}]],
        }
    )
    out = policy(images, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, images * 0.5)


def test_unregister_op_removes_it(custom_name: str) -> None:
    evoaug.register_op(custom_name)(_darken)
    unregister_op(custom_name)
    assert custom_name not in evoaug.available_ops()
    with pytest.raises(evoaug.UnknownOpError, match=f"unknown op '{custom_name}'"):
        unregister_op(custom_name)


def test_builtin_name_clash_raises() -> None:
    with pytest.raises(
        evoaug.ConfigError, match=r"op 'Rotate' is already registered.*replace=True"
    ):
        evoaug.register_op("Rotate")(_darken)
    assert get_op("Rotate").fn is not _darken


def test_replace_true_overrides(custom_name: str) -> None:
    evoaug.register_op(custom_name, high=0.5)(_darken)
    with pytest.raises(evoaug.ConfigError, match="already registered"):
        evoaug.register_op(custom_name, high=0.9)(_darken)
    evoaug.register_op(custom_name, high=0.9, replace=True)(_darken)
    assert get_op(custom_name).high == 0.9


@pytest.mark.parametrize("field", ["low", "high"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "0.5", True, None])
def test_bad_ranges_raise(custom_name: str, field: str, value: Any) -> None:
    message = re.escape(f"op '{custom_name}': `{field}` must be a finite number, got {value!r}")
    with pytest.raises(evoaug.ConfigError, match=message):
        evoaug.register_op(custom_name, **{field: value})
    assert custom_name not in evoaug.available_ops()


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_bad_names_raise(name: Any) -> None:
    with pytest.raises(evoaug.ConfigError, match="`name` must be a non-empty string"):
        evoaug.register_op(name)


def test_signed_must_be_a_bool(custom_name: str) -> None:
    with pytest.raises(evoaug.ConfigError, match="`signed` must be a bool, got 1"):
        evoaug.register_op(custom_name, signed=1)  # type: ignore[arg-type]


_TWO_PARAMETERS = re.escape(
    "the kernel must take exactly two positional parameters `(images, magnitudes)`"
)


def _one_parameter(images: torch.Tensor) -> torch.Tensor:
    return images


def _three_parameters(images: torch.Tensor, magnitudes: torch.Tensor, extra: int) -> torch.Tensor:
    return images


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (_one_parameter, rf"{_TWO_PARAMETERS}, got \(images\)"),
        (_three_parameters, rf"{_TWO_PARAMETERS}, got \(images, magnitudes, extra\)"),
        (lambda: None, rf"{_TWO_PARAMETERS}, got \(no parameters\)"),
        (3, "the kernel must be callable, got int"),
        ("Rotate", "the kernel must be callable, got str"),
    ],
    ids=["one-parameter", "three-required", "no-parameters", "int", "str"],
)
def test_bad_signatures_raise(custom_name: str, kernel: Any, message: str) -> None:
    decorator = evoaug.register_op(custom_name)
    with pytest.raises(evoaug.ConfigError, match=f"op '{custom_name}': {message}"):
        decorator(kernel)
    assert custom_name not in evoaug.available_ops()


def _with_default(
    images: torch.Tensor, magnitudes: torch.Tensor, scale: float = 1.0
) -> torch.Tensor:
    return images * scale


def _var_positional(*args: torch.Tensor) -> torch.Tensor:
    return args[0]


@pytest.mark.parametrize("kernel", [_with_default, _var_positional])
def test_optional_extra_parameters_are_accepted(custom_name: str, kernel: Any) -> None:
    evoaug.register_op(custom_name)(kernel)
    images = _images()
    assert torch.equal(get_op(custom_name)(images, torch.zeros(3)), images)


def test_unknown_op_suggests_the_closest_name() -> None:
    with pytest.raises(evoaug.UnknownOpError, match="Did you mean 'Rotate'") as info:
        get_op("Rotat")
    message = str(info.value)
    assert message.startswith("unknown op 'Rotat'.")
    assert "Available ops: " in message
    for name in BUILTIN_OPS:
        assert name in message
    # Catchable as the built-ins a user would expect.
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ValueError)


def test_unknown_op_without_close_match_lists_available_ops() -> None:
    with pytest.raises(evoaug.UnknownOpError, match="Available ops: .*Rotate") as info:
        get_op("qqqqqqqq")
    assert "Did you mean" not in str(info.value)


MAGNITUDE_OPS = [n for n in BUILTIN_OPS if get_op(n).has_magnitude]


@pytest.mark.parametrize("name", MAGNITUDE_OPS)
def test_magnitude_and_level_of_are_inverses(name: str) -> None:
    spec = get_op(name)
    assert float(spec.magnitude(0.0)) == spec.low
    for level in [i / 10 for i in range(11)]:
        magnitude = spec.low + level * (spec.high - spec.low)  # exact, in float64
        assert spec.level_of(magnitude) == pytest.approx(level, abs=1e-9)
        assert float(spec.magnitude(level)) == pytest.approx(magnitude, rel=1e-6, abs=1e-7)
        assert float(spec.magnitude(spec.level_of(magnitude))) == pytest.approx(
            magnitude, rel=1e-6, abs=1e-7
        )


@pytest.mark.parametrize("name", MAGNITUDE_OPS)
def test_level_of_accepts_every_magnitude_the_op_produces(name: str) -> None:
    spec = get_op(name)
    for level in (0.0, 0.5, 1.0):
        assert spec.level_of(float(spec.magnitude(torch.tensor(level)))) == pytest.approx(
            level, abs=1e-6
        )


def test_level_of_rejects_out_of_range_magnitudes() -> None:
    with pytest.raises(evoaug.ConfigError, match=r"magnitude 200.0 is outside op 'Rotate'"):
        get_op("Rotate").level_of(200.0)
    with pytest.raises(evoaug.ConfigError, match=r"range \[8.0, 2.0\]"):
        get_op("Posterize").level_of(1.0)


def test_level_of_rejects_ops_without_magnitude() -> None:
    with pytest.raises(evoaug.ConfigError, match="op 'Invert' has no magnitude"):
        get_op("Invert").level_of(0.0)


def test_wrong_output_shape_raises_op_error(custom_name: str) -> None:
    @evoaug.register_op(custom_name)
    def crop(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images[..., 1:, 1:]

    with pytest.raises(
        evoaug.OpError,
        match=re.escape(
            f"op '{custom_name}' must return a tensor of shape (3, 3, 8, 8), got (3, 3, 7, 7)"
        ),
    ):
        get_op(custom_name)(_images(), torch.zeros(3))


def test_non_tensor_output_raises_op_error(custom_name: str) -> None:
    evoaug.register_op(custom_name)(lambda images, magnitudes: images.tolist())
    with pytest.raises(evoaug.OpError, match="must return a tensor of shape .*got list"):
        get_op(custom_name)(_images(), torch.zeros(3))


def test_kernel_exceptions_become_op_errors(custom_name: str) -> None:
    @evoaug.register_op(custom_name)
    def broken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom")

    with pytest.raises(evoaug.OpError, match=f"op '{custom_name}' raised ValueError: boom") as info:
        get_op(custom_name)(_images(), torch.zeros(3))
    assert isinstance(info.value.__cause__, ValueError)


def test_output_dtype_is_cast_back(custom_name: str) -> None:
    evoaug.register_op(custom_name)(lambda images, magnitudes: images.double())
    out = get_op(custom_name)(_images(), torch.zeros(3))
    assert out.dtype == torch.float32


def test_generator_keyword_reaches_the_kernel(custom_name: str) -> None:
    received: list[torch.Generator | None] = []

    @evoaug.register_op(custom_name)
    def noisy(
        images: torch.Tensor, magnitudes: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        received.append(generator)
        return images

    spec = get_op(custom_name)
    assert spec.takes_generator
    g = torch.Generator().manual_seed(0)
    spec(_images(), torch.zeros(3), generator=g)
    spec(_images(), torch.zeros(3))
    assert received[0] is g
    assert received[1] is None


def test_var_keyword_kernels_get_the_generator(custom_name: str) -> None:
    received: dict[str, Any] = {}

    @evoaug.register_op(custom_name)
    def kernel(images: torch.Tensor, magnitudes: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        received.update(kwargs)
        return images

    g = torch.Generator().manual_seed(0)
    get_op(custom_name)(_images(), torch.zeros(3), generator=g)
    assert received == {"generator": g}


def test_kernels_without_generator_are_not_passed_one(custom_name: str) -> None:
    evoaug.register_op(custom_name)(_darken)
    # Would raise TypeError (-> OpError) if the generator were passed.
    out = get_op(custom_name)(_images(), torch.zeros(3), generator=torch.Generator())
    assert torch.equal(out, _images())
