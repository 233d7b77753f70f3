"""One parser for "a preset name or a policy file", shared by the callback and the CLI."""

from __future__ import annotations

from pathlib import Path

from evoaug.exceptions import ConfigError
from evoaug.policy._policy import Policy
from evoaug.policy._presets import presets

__all__ = ["POLICY_SUFFIXES", "resolve_policy"]

POLICY_SUFFIXES = (".yaml", ".yml", ".json")


def resolve_policy(source: object, *, argument: str = "policy") -> Policy:
    """A :class:`Policy` from a policy, a preset name, a policy file path, or YAML text.

    Args:
        source: A :class:`Policy` (returned as is), a preset name (see :func:`presets`), a
            policy file (a path ending in ``.yaml``, ``.yml`` or ``.json``, or any existing file,
            read as YAML), or policy YAML text (several lines).
        argument: The argument's name, for error messages.

    Raises:
        ConfigError: ``source`` is none of these, or the file is missing or invalid.

    Example:
        >>> resolve_policy("trivialaugment").name
        'trivialaugment'
        >>> resolve_policy("trivial", argument="initial_policy")
        Traceback (most recent call last):
        ...
        evoaug.exceptions.ConfigError: `initial_policy` must be a preset name ...
    """
    if isinstance(source, Policy):
        return source
    if isinstance(source, Path):
        source = str(source)
    if isinstance(source, str):
        if source in presets():
            return Policy.preset(source)
        if "\n" in source:
            return Policy.from_yaml(source)
        path = Path(source.strip())
        if path.suffix.lower() in POLICY_SUFFIXES or path.is_file():
            if path.suffix.lower() == ".json":
                return Policy.from_json(path)
            return Policy.from_yaml(path)
    raise ConfigError(
        f"`{argument}` must be a preset name {presets()}, a policy file "
        f"({'/'.join(POLICY_SUFFIXES)}) or a Policy, got {source!r}"
    )
