"""What a run directory records besides the search history: run.json and timeline.jsonl.

- ``run.json`` (written at the start of fit, then updated): evoaug's configuration, the schedule,
  where the fairness groups came from, the dataset's ``describe()`` when the datamodule has one,
  the command line and package versions.
- ``timeline.jsonl``: one line per training epoch: the policy trained with in the next epoch, its
  objectives, the generation count and the hypervolume. A resumed run first drops the lines of
  epochs its checkpoint had not finished, then writes them again.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from evoaug._files import atomic_write_text

__all__ = [
    "RUN_FILE",
    "TIMELINE_FILE",
    "append_timeline",
    "command_line",
    "package_versions",
    "truncate_timeline",
    "write_run_info",
]

_COMMANDS: list[list[str]] = []  # innermost last: set by `command_line` while a CLI runs


@contextlib.contextmanager
def command_line(argv: Sequence[str]) -> Iterator[None]:
    """Within the block, ``run.json`` records ``argv`` as the command, not ``sys.argv``.

    The command line hands Lightning its arguments directly and cuts ``sys.argv`` short while
    it runs (``LightningCLI`` warns when both hold them), so ``sys.argv`` no longer says how the
    run was started.
    """
    _COMMANDS.append([str(arg) for arg in argv])
    try:
        yield
    finally:
        _COMMANDS.pop()


RUN_FILE = "run.json"
TIMELINE_FILE = "timeline.jsonl"
_PACKAGES = (
    "evoaug", "torch", "torchvision", "pytorch-lightning", "lightning", "pymoo", "fairlearn",
    "albumentations", "numpy", "scikit-learn",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    """Installed versions of evoaug and the packages its results depend on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _plain(value: Any) -> Any:
    """JSON-safe copy: unknown objects become their repr."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        if isinstance(value, Mapping):
            return {str(k): _plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_plain(v) for v in value]
        if isinstance(value, float):
            return None
        return repr(value)


def write_run_info(run_dir: Path, info: Mapping[str, Any]) -> Path:
    """Write ``run.json`` (merged into an existing one) atomically."""
    path = run_dir / RUN_FILE
    current: dict[str, Any] = {}
    if path.is_file():
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            current = {}
    current.update(_plain(dict(info)))
    argv = _COMMANDS[-1] if _COMMANDS else [os.path.basename(sys.argv[0]), *sys.argv[1:]]
    current.setdefault("command", shlex.join(argv))
    current.setdefault("versions", package_versions())
    return atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")


def append_timeline(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Append one epoch's line to ``timeline.jsonl`` (flushed and fsynced)."""
    line = json.dumps(_plain(dict(record)), separators=(",", ":"))
    with (run_dir / TIMELINE_FILE).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def truncate_timeline(run_dir: Path, *, last_epoch: int) -> int:
    """Keep the ``timeline.jsonl`` lines of epochs up to ``last_epoch``; rewrite atomically.

    Lines a killed run wrote after its last checkpoint (and a torn last line) are dropped, so a
    resumed run's timeline lists every epoch once.

    Returns:
        The number of lines removed.

    """
    path = run_dir / TIMELINE_FILE
    if not path.is_file():
        return 0
    kept, removed = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            epoch = json.loads(line).get("epoch")
        except (ValueError, AttributeError):
            epoch = None
        if isinstance(epoch, int) and epoch <= last_epoch:
            kept.append(line + "\n")
        else:
            removed += 1
    if removed:
        atomic_write_text(path, "".join(kept))
    return removed
