"""Argument checks shared by the datamodules: one error style, naming the argument."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evoaug import _checks as checks
from evoaug.exceptions import ConfigError

__all__ = ["check_choice", "check_fraction", "check_int", "check_root", "check_split_fractions"]


def check_int(name: str, value: object, minimum: int, *, optional: bool = False) -> None:
    """Raise a ConfigError unless ``value`` is an int >= ``minimum`` (or None when optional)."""
    if not optional:
        checks.check_int(name, value, low=minimum)
    elif value is not None:
        try:
            checks.check_int(name, value, low=minimum)
        except ConfigError as err:
            raise ConfigError(f"{err}".replace(", got", " or None, got", 1)) from None


def check_fraction(
    name: str, value: object, *, allow_zero: bool = False, allow_one: bool = False
) -> None:
    """Raise a ConfigError unless ``value`` is a float in (0, 1), ends included on request."""
    checks.check_number(
        name, value, low=0.0, high=1.0, low_open=not allow_zero, high_open=not allow_one
    )


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise a ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"`{name}` must be one of {list(choices)}, got {value!r}")


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both fractions in (0, 1) and leaving training data."""
    check_fraction("val_fraction", val_fraction)
    check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(
            "`val_fraction` + `test_fraction` must be < 1 to leave training data, got "
            f"{val_fraction!r} + {test_fraction!r}"
        )


def check_root(root: object) -> str:
    """``root`` as a string; a ``ConfigError`` unless it is a path (``str`` or ``Path``)."""
    if not isinstance(root, (str, Path)):
        raise ConfigError(f"`root` must be a folder path, got {root!r}")
    return str(root)
