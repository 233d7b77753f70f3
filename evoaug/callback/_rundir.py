"""The run directory of a fit: which files it holds, when they are written, and by which rank.

:class:`RunDirectory` writes everything a run leaves for its report (names in
:mod:`evoaug._run_layout`): the search's history and outputs (formats in :mod:`evoaug.search`),
and the two files of this module's own formats:

- ``run.json`` (written at the start of fit, then updated): evoaug's configuration, the schedule,
  where the fairness groups came from, the dataset's ``describe()`` when the datamodule has one,
  the command line and package versions.
- ``timeline.jsonl``: one line per training epoch: the policy trained with in the next epoch, its
  objectives, the generation count and the hypervolume. A resumed run first drops the lines of
  epochs its checkpoint had not finished, then writes them again.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from evoaug._files import atomic_write_bytes, atomic_write_text
from evoaug._run_layout import (
    BEST_POLICY_FILE,
    DECISIONS_FILE,
    PARETO_FILE,
    RUN_FILE,
    RUN_FILES,
    SAMPLES_FILE,
    TIMELINE_FILE,
)
from evoaug.callback._schedule import Schedule
from evoaug.callback._settings import CallbackConfig
from evoaug.policy import Policy
from evoaug.search import HistoryWriter, write_best_policy, write_pareto

__all__ = [
    "RunDirectory",
    "append_jsonl",
    "append_timeline",
    "command_line",
    "package_versions",
    "run_info",
    "truncate_jsonl",
    "truncate_lines",
    "truncate_timeline",
    "write_run_info",
    "write_samples",
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


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path`` (flushed and fsynced)."""
    line = json.dumps(_plain(dict(record)), separators=(",", ":"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def append_timeline(run_dir: Path, record: Mapping[str, Any]) -> None:
    """Append one epoch's line to ``timeline.jsonl`` (flushed and fsynced)."""
    append_jsonl(run_dir / TIMELINE_FILE, record)


def truncate_timeline(run_dir: Path, *, last_epoch: int) -> int:
    """Keep the ``timeline.jsonl`` lines of epochs up to ``last_epoch``; rewrite atomically.

    Lines a killed run wrote after its last checkpoint (and a torn last line) are dropped, so a
    resumed run's timeline lists every epoch once.

    Returns:
        The number of lines removed.

    """
    return truncate_jsonl(run_dir / TIMELINE_FILE, "epoch", last_epoch)


def truncate_lines(path: Path, keep: int) -> int:
    """Keep the first ``keep`` whole lines of ``path`` (a torn line is dropped); atomically.

    Returns:
        The number of lines removed (0 when the file is missing).
    """
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    whole = [line for line in lines[:-1] if line.strip()]  # the last piece is torn or empty
    removed = len(whole) - min(keep, len(whole)) + (1 if lines[-1].strip() else 0)
    if removed:
        atomic_write_text(path, "".join(line + "\n" for line in whole[:keep]))
    return removed


def truncate_jsonl(path: Path, key: str, last: int) -> int:
    """Keep the lines of ``path`` whose integer ``key`` is at most ``last``; rewrite atomically.

    Lines without that key, unreadable lines and a torn last line are dropped too.

    Returns:
        The number of lines removed.
    """
    if not path.is_file():
        return 0
    kept, removed = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line).get(key)
        except (ValueError, AttributeError):
            value = None
        if isinstance(value, int) and value <= last:
            kept.append(line + "\n")
        else:
            removed += 1
    if removed:
        atomic_write_text(path, "".join(kept))
    return removed


def run_info(trainer: Any, config: CallbackConfig, schedule: Schedule | None) -> dict[str, Any]:
    """What ``run.json`` records of a fit: settings, schedule, dataset, model, scale."""
    describe = getattr(getattr(trainer, "datamodule", None), "describe", None)
    module = trainer.lightning_module
    return {
        "evoaug": config.record(),
        "schedule": {
            "generations_at": {str(k): v for k, v in schedule.generations_at.items()}
            if schedule
            else {},
            "description": schedule.describe() if schedule else "",
        },
        "dataset": describe() if callable(describe) else None,
        "model": type(module).__name__ if module is not None else None,
        "max_epochs": trainer.max_epochs,
        "world_size": trainer.world_size,
    }


def write_samples(
    path: Path, images: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, per_group: int = 8
) -> None:
    """Save a few clean images per group (uint8) for the report's sample grid, atomically."""
    ids = sorted(set(groups.tolist()))
    keep = torch.cat([torch.nonzero(groups == g).flatten()[:per_group] for g in ids])
    sample = {
        "images": (images[keep] * 255).round().clamp(0, 255).to(torch.uint8),
        "labels": labels[keep].clone(),
        "groups": groups[keep].clone(),
    }
    buffer = io.BytesIO()
    torch.save(sample, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class RunDirectory:
    """The files of one run, written by one process (rank 0 under DDP).

    Every method does nothing on the other ranks (``writer=False``), so callers need not ask.

    Args:
        path: The run directory, ``<trainer log dir>/evoaug``.
        writer: Whether this process writes (the global rank-zero process).
        log: Where notices go (the Trainer's ``rank_zero_info``).

    Example:
        >>> import tempfile
        >>> run = RunDirectory(Path(tempfile.mkdtemp()) / "evoaug", writer=True, log=print)
        >>> run.start(resumed=False)
        >>> run.write_info({"seed": 0})
        >>> sorted(p.name for p in run.path.iterdir())
        ['run.json']
    """

    def __init__(self, path: Path, *, writer: bool, log: Callable[[str], Any]) -> None:
        self.path = path
        self.writer = writer
        self._log = log
        self._history = HistoryWriter(path) if writer else None

    def start(self, *, resumed: bool) -> None:
        """Create the directory; a new (not resumed) run replaces an earlier run's files."""
        if not self.writer:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if resumed:
            return
        stale = [self.path / name for name in RUN_FILES if (self.path / name).is_file()]
        if not stale:
            return
        self._log(
            f"evoaug: {self.path} held an earlier run's files "
            f"({', '.join(p.name for p in stale)}); this new run replaces them. To continue "
            "that run, resume it with `ckpt_path`; to keep both, give each run its own directory "
            "(a logger's version, or `default_root_dir`)."
        )
        for path in stale:
            path.unlink()
        self._history = HistoryWriter(self.path)

    def write_info(self, info: Mapping[str, Any]) -> None:
        """Merge ``info`` into ``run.json``."""
        if self.writer:
            write_run_info(self.path, info)

    def write_samples(
        self, images: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
    ) -> None:
        """``samples.pt``: a few clean validation images per fairness group."""
        if self.writer:
            write_samples(self.path / SAMPLES_FILE, images, labels, groups)

    def record_generation(
        self,
        records: Sequence[Mapping[str, Any]],
        front: Sequence[tuple[Policy, Mapping[str, float]]],
        active: Policy,
        objectives: Mapping[str, float],
    ) -> None:
        """Append a generation's candidates to the history; rewrite the front and best policy."""
        if self._history is None:
            return
        self._history.append(records)
        write_pareto(self.path / PARETO_FILE, front)
        write_best_policy(self.path / BEST_POLICY_FILE, active, dict(objectives))

    def record_decision(self, record: Mapping[str, Any]) -> None:
        """Append one decision to ``decisions.jsonl`` (flushed and fsynced)."""
        if self.writer:
            append_jsonl(self.path / DECISIONS_FILE, record)

    def record_epoch(self, record: Mapping[str, Any]) -> None:
        """Append one epoch's line to ``timeline.jsonl``."""
        if self.writer:
            append_timeline(self.path, record)

    def rewind(self, *, history_records: int, last_epoch: int, generations: int) -> None:
        """Drop what a killed run wrote after its checkpoint (it would appear twice)."""
        if self._history is None:
            return
        self._history.truncate(history_records)
        # one decision per generation (none with decision="front": no file)
        truncate_lines(self.path / DECISIONS_FILE, generations)
        truncate_timeline(self.path, last_epoch=last_epoch)
