"""Argument checks shared by the datamodules: one error style, naming the argument."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evoaug.exceptions import ConfigError

__all__ = ["check_choice", "check_fraction", "check_int", "check_root", "check_split_fractions"]


def check_int(name: str, value: object, minimum: int, *, optional: bool = False) -> None:
    """Raise a ConfigError unless ``value`` is an int >= ``minimum`` (or None when optional)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        none = " or None" if optional else ""
        raise ConfigError(f"`{name}` must be an int >= {minimum}{none}, got {value!r}")


def check_fraction(
    name: str, value: object, *, allow_zero: bool = False, allow_one: bool = False
) -> None:
    """Raise a ConfigError unless ``value`` is a float in (0, 1), ends included on request."""
    low, high = ("[" if allow_zero else "("), ("]" if allow_one else ")")
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (value >= 0.0 if allow_zero else value > 0.0)
        and (value <= 1.0 if allow_one else value < 1.0)
    )
    if not ok:
        raise ConfigError(f"`{name}` must be a number in {low}0, 1{high}, got {value!r}")


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
