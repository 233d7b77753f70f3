"""Argument checks shared by every module: one error style, naming the argument.

Each check returns the value it accepted (converted to a plain ``int``/``float``), or raises a
:class:`~evoaug.ConfigError` that names the argument in backticks, states what is allowed and
shows what was received. Booleans are never numbers here.

Example:
    >>> check_int("population_size", 16, low=4)
    16
    >>> check_number("search_budget", 0.2, low=0.0, high=10.0)
    0.2
    >>> check_int("n_genes", 0, low=1, high=4)
    Traceback (most recent call last):
    ...
    evoaug.exceptions.ConfigError: `n_genes` must be an int in [1, 4], got 0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from evoaug.exceptions import ConfigError

__all__ = ["check_choice", "check_int", "check_number"]


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (either bound optional; NumPy ints accepted).

    Raises:
        ConfigError: ``value`` is not an integer (bools are not) or lies outside the bounds.
    """
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        number = int(value)
        if (low is None or number >= low) and (high is None or number <= high):
            return number
    if low is not None and high is not None:
        bound = f" in [{low}, {high}]"
    elif low is not None:
        bound = f" >= {low}"
    elif high is not None:
        bound = f" <= {high}"
    else:
        bound = ""
    raise ConfigError(f"`{name}` must be an int{bound}, got {value!r}")


def check_number(
    name: str,
    value: object,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` between ``low`` and ``high`` (closed unless ``*_open``).

    Raises:
        ConfigError: ``value`` is not a real number (bools are not), is NaN or infinite, or
            lies outside the interval.
    """
    real = not isinstance(value, bool) and isinstance(value, numbers.Real)
    number = float(value) if real else math.nan  # type: ignore[arg-type]
    if (
        math.isfinite(number)
        and (number > low if low_open else number >= low)
        and (number < high if high_open else number <= high)
    ):
        return number
    raise ConfigError(
        f"`{name}` must be {_interval(low, high, low_open, high_open)}, got {value!r}"
    )


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return "a finite number"
    if math.isinf(high):
        return f"a number {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f"a number {'<' if high_open else '<='} {high:g}"
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    return f"a number in {left}{low:g}, {high:g}{right}"


def check_choice(name: str, value: object, allowed: Sequence[object]) -> str:
    """``value`` if it is one of ``allowed`` (strings), else a ConfigError listing them."""
    if isinstance(value, str) and value in allowed:
        return value
    raise ConfigError(f"`{name}` must be one of {list(allowed)}, got {value!r}")
