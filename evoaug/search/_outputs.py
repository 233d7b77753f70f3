"""The run's result files: ``pareto.yaml`` and ``best_policy.yaml``, written atomically.

Both are replaced whole (write to a temporary file, fsync, rename), so a reader or a crash sees
the previous version or the new one, never a part. ``best_policy.yaml`` is a plain policy file
(:meth:`evoaug.Policy.from_yaml` loads it); its objective values are YAML comments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from evoaug._files import atomic_write_text
from evoaug.exceptions import ConfigError
from evoaug.policy import Policy

__all__ = ["read_pareto", "write_best_policy", "write_pareto"]


def _objectives(where: str, objectives: object) -> dict[str, float | None]:
    if not isinstance(objectives, Mapping):
        raise ConfigError(f"`{where}` must be a mapping of objective values, got {objectives!r}")
    out: dict[str, float | None] = {}
    for name, value in objectives.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ConfigError(f"`{where}[{name!r}]` must be a number or null, got {value!r}")
        number = None if value is None else float(value)
        out[str(name)] = number if number is not None and math.isfinite(number) else None
    return out


def write_pareto(path: str | Path, front: Sequence[tuple[Policy, Mapping[str, float]]]) -> Path:
    """Write the front as a YAML list of ``{policy: <policy dict>, objectives: {...}}``.

    Non-finite objective values are written as ``null``.

    Example:
        >>> import tempfile, pathlib
        >>> from evoaug import Policy
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "pareto.yaml"
        >>> _ = write_pareto(path, [(Policy.preset("identity"), {"accuracy": 0.9})])
        >>> read_pareto(path)[0][1]
        {'accuracy': 0.9}

    """
    entries = []
    for i, item in enumerate(front):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ConfigError(f"`front[{i}]` must be a (policy, objectives) pair, got {item!r}")
        policy, objectives = item
        if not isinstance(policy, Policy):
            raise ConfigError(
                f"`front[{i}][0]` must be an evoaug.Policy, got {type(policy).__name__}"
            )
        entries.append(
            {"policy": policy.to_dict(), "objectives": _objectives(f"front[{i}][1]", objectives)}
        )
    text = (
        "# evoaug Pareto front: one entry per non-dominated policy, objectives higher is better\n"
    )
    text += yaml.safe_dump(entries, sort_keys=False, default_flow_style=None)
    return atomic_write_text(path, text)


def read_pareto(path: str | Path) -> list[tuple[Policy, dict[str, float | None]]]:
    """Load a file written by :func:`write_pareto` (``yaml.safe_load`` only).

    Raises:
        ConfigError: A missing file, invalid YAML or an entry of the wrong shape.

    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Pareto file not found: {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if data is None:
        data = []
    if not isinstance(data, list):
        raise ConfigError(f"{path} must hold a list of entries, got {type(data).__name__}")
    front = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or set(entry) != {"policy", "objectives"}:
            raise ConfigError(
                f"{path}: entry {i} must be a mapping with keys ['objectives', 'policy'], "
                f"got {entry!r}"
            )
        try:
            policy = Policy.from_dict(entry["policy"])
        except ConfigError as err:
            raise ConfigError(f"{path}: entry {i}: {err}") from err
        front.append((policy, _objectives(f"{path}: entry {i} objectives", entry["objectives"])))
    return front


def write_best_policy(
    path: str | Path, policy: Policy, objectives: Mapping[str, Any] | None = None
) -> Path:
    """Write the chosen policy as a policy file, with its objective values as comments.

    Example:
        >>> import tempfile, pathlib
        >>> from evoaug import Policy
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "best_policy.yaml"
        >>> _ = write_best_policy(path, Policy.preset("identity"), {"accuracy": 0.91})
        >>> path.read_text().splitlines()[1]
        '# accuracy: 0.91'
        >>> Policy.from_yaml(path) == Policy.preset("identity")
        True

    """
    if not isinstance(policy, Policy):
        raise ConfigError(f"`policy` must be an evoaug.Policy, got {type(policy).__name__}")
    header = ["# evoaug best policy (load with evoaug.Policy.from_yaml)"]
    if objectives is not None:
        for name, value in _objectives("objectives", objectives).items():
            header.append(f"# {' '.join(name.split())}: {'null' if value is None else repr(value)}")
    return atomic_write_text(path, "\n".join(header) + "\n" + policy.to_yaml())
