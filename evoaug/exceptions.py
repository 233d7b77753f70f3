"""The exceptions evoaug raises.

Every error a user can cause derives from :class:`EvoAugError`, and also from the built-in
exception a Python user would expect (``ValueError`` for bad configuration, ``KeyError`` for an
unknown name), so ``except ValueError`` keeps working around evoaug calls.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EvoAugError",
    "InputError",
    "OpError",
    "UnknownOpError",
    "find_evoaug_error",
]


class EvoAugError(Exception):
    """Base class of every exception raised by evoaug."""


class ConfigError(EvoAugError, ValueError):
    """A configuration value (argument, policy file, recipe) is invalid.

    The message names the field, the allowed values and what was given.
    """


class UnknownOpError(ConfigError, KeyError):
    """An augmentation op name is not in the registry.

    A :class:`ConfigError` and a ``KeyError``; the message lists the available ops and the
    closest match.
    """

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; show the message as written instead.
        return str(self.args[0]) if self.args else ""


class OpError(EvoAugError, RuntimeError):
    """An augmentation op failed or produced invalid output (wrong shape, NaN, out of range)."""


class InputError(EvoAugError, ValueError):
    """Data handed to evoaug has the wrong type, shape, dtype or value range.

    The message says what was expected, what was found and how to fix it.
    """


def find_evoaug_error(err: BaseException) -> EvoAugError | None:
    """The first :class:`EvoAugError` in ``err``'s chain of causes and contexts, if any.

    Frameworks (jsonargparse, Lightning) wrap the errors they catch; the command line and the
    offline search use this to report evoaug's own message instead of the wrapper's.

    Example:
        >>> try:
        ...     try:
        ...         raise ConfigError("`lr` must be > 0, got -1")
        ...     except ConfigError as inner:
        ...         raise RuntimeError("wrapped") from inner
        ... except RuntimeError as outer:
        ...     print(find_evoaug_error(outer))
        `lr` must be > 0, got -1
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, EvoAugError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
