"""Argument checks shared by the reference networks and the classifier."""

from __future__ import annotations

from evoaug.exceptions import ConfigError

__all__ = ["check_choice", "check_int", "check_milestones", "check_positive", "check_rate"]


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` if it is an int >= ``minimum`` (bools rejected), else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"`{name}` must be an int >= {minimum}, got {value!r}")
    return value


def check_rate(name: str, value: object, *, high: float = 1.0) -> float:
    """``value`` as a float in ``[0, high)``, else a :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < high:
        raise ConfigError(f"`{name}` must be a number in [0, {high}), got {value!r}")
    return float(value)


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a :class:`ConfigError` listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"`{name}` must be one of {allowed}, got {value!r}")
    return value


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float > 0 (>= 0 with ``allow_zero``), else a :class:`ConfigError`."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (value >= 0 if allow_zero else value > 0):  # type: ignore[operator]
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"`{name}` must be a number {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_milestones(milestones: object) -> list[int]:
    """Increasing epochs >= 1 as a list (``[]`` for None), else a :class:`ConfigError`."""
    if milestones is None:
        return []
    values = list(milestones) if isinstance(milestones, (list, tuple)) else None
    if values is None or any(isinstance(m, bool) or not isinstance(m, int) for m in values):
        raise ConfigError(f"`milestones` must be a list of ints or None, got {milestones!r}")
    if any(m < 1 for m in values) or values != sorted(set(values)):
        raise ConfigError(f"`milestones` must be increasing epochs >= 1, got {milestones!r}")
    return values
