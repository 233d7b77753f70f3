"""Policy files: a versioned dict of builtins, as YAML or JSON.

Reading yields the arguments of a policy (:class:`~evoaug.policy._genes.PolicyFields`), which
:meth:`evoaug.Policy.from_dict` and the other loaders turn into a policy; writing reads any
policy (:class:`~evoaug.policy._genes.PolicyLike`). So this module does not import the policy
module, which uses it.

Files name ops by name, never by index, and carry ``format_version``. Loading uses
``yaml.safe_load`` only, so a policy file is pure data: a YAML tag such as
``!!python/object`` is rejected, never constructed. Every problem is a
:class:`~evoaug.exceptions.ConfigError` that names the field, the allowed values and what was
given.
"""

from __future__ import annotations

import json
import math
import reprlib
from pathlib import Path
from typing import Any, cast

import yaml

from evoaug._files import atomic_write_text
from evoaug.exceptions import ConfigError, UnknownOpError
from evoaug.ops import get_op
from evoaug.policy._genes import (
    INTERPOLATIONS,
    MAGNITUDE_SAMPLINGS,
    MAX_GENES,
    MAX_SUB_POLICIES,
    Gene,
    Interpolation,
    MagnitudeSampling,
    PolicyFields,
    PolicyLike,
    SubPolicy,
)

__all__ = [
    "FORMAT_VERSION",
    "MAX_GENES",
    "MAX_SUB_POLICIES",
    "SUPPORTED_VERSIONS",
    "fields_from_dict",
    "fields_from_json",
    "fields_from_yaml",
    "policy_to_dict",
    "policy_to_json",
    "policy_to_yaml",
]

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
_POLICY_KEYS = ("format_version", "name", "magnitude_sampling", "interpolation", "sub_policies")

# Values quoted in error messages are cut short: a file can hold huge or deeply shared data
# (YAML aliases), and a message must never expand it.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 80, 80


def _short(value: object) -> str:
    """A bounded ``repr`` of ``value`` for error messages."""
    return _REPR.repr(value)


_GENE_KEYS = ("op", "probability", "level")


def policy_to_dict(policy: PolicyLike) -> dict[str, Any]:
    """Builtins only, ops by name, with ``format_version``.

    ``interpolation`` is written only when it is not the default ``"bilinear"``, so files of
    bilinear policies stay readable by versions that predate the key.
    """
    data: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": policy.name,
        "magnitude_sampling": policy.magnitude_sampling,
    }
    if policy.interpolation != "bilinear":
        data["interpolation"] = policy.interpolation
    data["sub_policies"] = [
        [{"op": g.op, "probability": g.probability, "level": g.level} for g in sub]
        for sub in policy.sub_policies
    ]
    return data


def _type_name(value: object) -> str:
    return type(value).__name__


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"`{where}` must be a number in [0, 1], got {_short(value)} ({_type_name(value)})"
        )
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"`{where}` must be a number in [0, 1], got {_short(value)}")
    return float(value)


def _gene(where: str, data: object) -> Gene:
    if not isinstance(data, dict):
        raise ConfigError(
            f"`{where}` must be a mapping with keys {list(_GENE_KEYS)}, got {_short(data)} "
            f"({_type_name(data)})"
        )
    unknown = sorted(str(k) for k in data if k not in _GENE_KEYS)
    if unknown:
        raise ConfigError(
            f"`{where}` has unknown keys {_short(unknown)}; allowed keys: {list(_GENE_KEYS)}"
        )
    if "op" not in data:
        raise ConfigError(f"`{where}.op` is missing; every gene needs an op name")
    op = data["op"]
    if not isinstance(op, str):
        raise ConfigError(
            f"`{where}.op` must be an op name (str), got {_short(op)} ({_type_name(op)})"
        )
    try:
        spec = get_op(op)
    except UnknownOpError as err:
        raise UnknownOpError(f"`{where}.op`: {err}") from err
    probability = _number(f"{where}.probability", data.get("probability", 1.0))
    if "level" not in data and spec.has_magnitude:
        raise ConfigError(f"`{where}.level` is missing; op {_short(op)} needs a level in [0, 1]")
    level = _number(f"{where}.level", data.get("level", 0.0))
    return Gene(op, probability, level)


def fields_from_dict(data: object) -> PolicyFields:
    """Validate ``data`` (e.g. a loaded file); return the arguments of its policy."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"a policy must be a mapping with keys {list(_POLICY_KEYS)}, got "
            f"{_type_name(data)}{'' if data is None else f': {_short(data)}'}"
        )
    unknown = sorted(str(k) for k in data if k not in _POLICY_KEYS)
    if unknown:
        raise ConfigError(
            f"policy has unknown keys {_short(unknown)}; allowed keys: {list(_POLICY_KEYS)}"
        )
    if "format_version" not in data:
        raise ConfigError(
            f"`format_version` is missing; supported versions: {list(SUPPORTED_VERSIONS)}"
        )
    version = data["format_version"]
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise ConfigError(
            f"`format_version` must be one of {list(SUPPORTED_VERSIONS)}, got {_short(version)}; "
            "a newer evoaug may have written this file"
        )
    sampling = data.get("magnitude_sampling", "fixed")
    if sampling not in MAGNITUDE_SAMPLINGS:
        raise ConfigError(
            f"`magnitude_sampling` must be one of {list(MAGNITUDE_SAMPLINGS)}, "
            f"got {_short(sampling)}"
        )
    interpolation = data.get("interpolation", "bilinear")
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(
            f"`interpolation` must be one of {list(INTERPOLATIONS)}, got {_short(interpolation)}"
        )
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise ConfigError(
            f"`name` must be a string or null, got {_short(name)} ({_type_name(name)})"
        )
    if "sub_policies" not in data:
        raise ConfigError("`sub_policies` is missing; a policy needs a list of sub-policies")
    subs = data["sub_policies"]
    if not isinstance(subs, list):
        raise ConfigError(
            f"`sub_policies` must be a list of lists of genes, got {_type_name(subs)}"
        )
    if not 1 <= len(subs) <= MAX_SUB_POLICIES:
        raise ConfigError(
            f"`sub_policies` must hold between 1 and {MAX_SUB_POLICIES} sub-policies, "
            f"got {len(subs)}"
        )
    built = []
    for i, sub in enumerate(subs):
        where = f"sub_policies[{i}]"
        if not isinstance(sub, list):
            raise ConfigError(f"`{where}` must be a list of genes, got {_type_name(sub)}")
        if not 1 <= len(sub) <= MAX_GENES:
            raise ConfigError(
                f"`{where}` must hold between 1 and {MAX_GENES} genes, got {len(sub)}"
            )
        built.append(SubPolicy(tuple(_gene(f"{where}[{j}]", g) for j, g in enumerate(sub))))
    return PolicyFields(
        sub_policies=tuple(built),
        magnitude_sampling=cast(MagnitudeSampling, sampling),
        name=name,
        interpolation=cast(Interpolation, interpolation),
    )


def _read_source(source: str | Path, suffixes: tuple[str, ...]) -> tuple[str, str]:
    """Return ``(text, label)`` from a path or from literal text."""
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.strip().endswith(suffixes)
    ):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"policy file not found: {str(path)!r}")
        return path.read_text(encoding="utf-8"), str(path)
    if not isinstance(source, str):
        raise ConfigError(f"`source` must be a path or policy text, got {_type_name(source)}")
    path = Path(source)
    if "\n" not in source and len(source) < 4096 and path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    return source, "<text>"


def _describe_yaml_error(err: yaml.YAMLError) -> str:
    """One line: the problem and where it is."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


def fields_from_yaml(source: str | Path) -> PolicyFields:
    """Load from a YAML file or YAML text with ``yaml.safe_load`` (tags are rejected)."""
    text, label = _read_source(source, (".yaml", ".yml"))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{label} is not a valid policy file: {_describe_yaml_error(err)}. Policy files are "
            "plain YAML data; tags such as !!python/object are never constructed"
        ) from err
    return fields_from_dict(data)


def fields_from_json(source: str | Path) -> PolicyFields:
    """Load from a JSON file or JSON text."""
    text, label = _read_source(source, (".json",))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{label} is not valid JSON: {err}") from err
    return fields_from_dict(data)


def policy_to_yaml(policy: PolicyLike, path: str | Path | None = None) -> str:
    """YAML text of the policy; also written atomically to ``path`` when given."""
    text = yaml.safe_dump(policy_to_dict(policy), sort_keys=False, default_flow_style=None)
    if path is not None:
        atomic_write_text(path, text)
    return text


def policy_to_json(policy: PolicyLike, path: str | Path | None = None) -> str:
    """JSON text of the policy; also written atomically to ``path`` when given."""
    text = json.dumps(policy_to_dict(policy), indent=2) + "\n"
    if path is not None:
        atomic_write_text(path, text)
    return text
