"""Argument checks shared by the reference networks and the classifier."""

from __future__ import annotations

from evoaug import _checks as checks
from evoaug.exceptions import ConfigError

__all__ = ["check_choice", "check_int", "check_milestones", "check_positive", "check_rate"]


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` if it is an int >= ``minimum`` (bools rejected), else a :class:`ConfigError`."""
    return checks.check_int(name, value, low=minimum)


def check_rate(name: str, value: object, *, high: float = 1.0) -> float:
    """``value`` as a float in ``[0, high)``, else a :class:`ConfigError`."""
    return checks.check_number(name, value, low=0.0, high=high, high_open=True)


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a :class:`ConfigError` listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"`{name}` must be one of {allowed}, got {value!r}")
    return value


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float > 0 (>= 0 with ``allow_zero``), else a :class:`ConfigError`."""
    return checks.check_number(name, value, low=0.0, low_open=not allow_zero)


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
