import math

import numpy as np
import pytest

from evoaug._checks import check_choice, check_int, check_number
from evoaug.exceptions import ConfigError


def test_check_int_accepts_ints_and_numpy_ints_as_plain_int():
    assert check_int("n", 3, low=1) == 3
    value = check_int("n", np.int64(7), low=0, high=7)
    assert value == 7 and type(value) is int


@pytest.mark.parametrize(
    ("value", "low", "high", "message"),
    [
        (True, 0, None, r"`n` must be an int >= 0, got True"),
        (1.0, 0, None, r"`n` must be an int >= 0, got 1.0"),
        (0, 1, 4, r"`n` must be an int in \[1, 4\], got 0"),
        (5, 1, 4, r"`n` must be an int in \[1, 4\], got 5"),
        (5, None, 4, r"`n` must be an int <= 4, got 5"),
        ("3", None, None, r"`n` must be an int, got '3'"),
    ],
)
def test_check_int_rejects_with_the_bound_and_the_value(value, low, high, message):
    with pytest.raises(ConfigError, match=message):
        check_int("n", value, low=low, high=high)


def test_check_number_bounds_open_and_closed():
    assert check_number("x", 0, low=0.0) == 0.0
    assert check_number("x", np.float32(0.5), low=0.0, high=1.0, high_open=True) == 0.5
    with pytest.raises(ConfigError, match=r"`x` must be a number in \(0, 1\], got 0"):
        check_number("x", 0, low=0.0, high=1.0, low_open=True)
    with pytest.raises(ConfigError, match=r"`x` must be a number in \[0, 1\), got 1"):
        check_number("x", 1, low=0.0, high=1.0, high_open=True)
    with pytest.raises(ConfigError, match=r"`x` must be a number > 0, got -1"):
        check_number("x", -1, low=0.0, low_open=True)
    with pytest.raises(ConfigError, match=r"`x` must be a number <= 2, got 3"):
        check_number("x", 3, high=2.0)


@pytest.mark.parametrize("value", [math.nan, math.inf, True, "1", None])
def test_check_number_rejects_non_finite_and_non_numbers(value):
    with pytest.raises(ConfigError, match=r"`x` must be a finite number, got"):
        check_number("x", value)


def test_check_choice_lists_the_allowed_values():
    assert check_choice("mode", "batch", ("batch", "dataset")) == "batch"
    with pytest.raises(ConfigError, match=r"`mode` must be one of \['batch', 'dataset'\], got 1"):
        check_choice("mode", 1, ("batch", "dataset"))
