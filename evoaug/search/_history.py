"""The run's history: ``history.jsonl`` (every evaluated candidate), one generation per append.

One JSON object per line. A generation is appended with a single write followed by ``flush``
and ``os.fsync``, so a crash loses at most the generation being written; the reader tolerates a
torn last line (a write cut short) and reports it, while a corrupt line elsewhere is an error.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evoaug._run_layout import HISTORY_FILE
from evoaug.exceptions import ConfigError
from evoaug.search._algorithm import Candidate

__all__ = ["HISTORY_FILE", "HistoryWriter", "history_record", "read_history"]

_log = logging.getLogger(__name__)


def _json_value(value: float | None) -> float | None:
    """A float for JSON: NaN and infinities become ``None`` (null)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def history_record(
    *,
    generation: int,
    epoch: int,
    rank: int,
    candidate: Candidate,
    objectives: Mapping[str, float] | None,
    failure: str | None,
    seconds: float,
    pareto_rank: int | None = None,
) -> dict[str, Any]:
    """One line of ``history.jsonl`` as plain JSON values.

    Args:
        generation: The search generation (number of tells before this candidate's).
        epoch: The training epoch during which it was evaluated.
        rank: The process (DDP) rank that evaluated it.
        candidate: The candidate; its policy is stored by op names (``Policy.to_dict``) and its
            genome as a list of floats.
        objectives: Objective values, higher is better; ``None`` for a failure. NaN and
            infinite values are stored as ``null``.
        failure: Why the evaluation failed, or ``None``.
        seconds: Wall time of the evaluation.
        pareto_rank: Non-domination rank after the generation's survival, when known.

    Returns:
        A dict of ``int``, ``float``, ``str``, ``None``, lists and dicts.

    Example:
        >>> import numpy as np
        >>> from evoaug import GenomeSpace
        >>> from evoaug.search import Candidate
        >>> space = GenomeSpace(n_subpolicies=1, n_genes=1)
        >>> x = np.array([0.0, 1.0, 0.5])
        >>> record = history_record(generation=0, epoch=3, rank=0,
        ...     candidate=Candidate(0, x, space.decode(x)), objectives={"accuracy": float("nan")},
        ...     failure="NaN loss", seconds=1.5)
        >>> record["objectives"], record["policy"]["sub_policies"][0][0]["op"]
        ({'accuracy': None}, 'Identity')

    """
    return {
        "generation": int(generation),
        "epoch": int(epoch),
        "rank": int(rank),
        "index": int(candidate.index),
        "policy": candidate.policy.to_dict(),
        "genome": [float(v) for v in candidate.genome],
        "objectives": None
        if objectives is None
        else {str(k): _json_value(v) for k, v in objectives.items()},
        "failure": None if failure is None else str(failure),
        "seconds": float(seconds),
        "pareto_rank": None if pareto_rank is None else int(pareto_rank),
    }


class HistoryWriter:
    """Append generations of records to ``run_dir/history.jsonl``.

    If the file ends with a torn line (a crash in the middle of a write), the first append cuts
    it off, so new records never glue onto it; :attr:`dropped` holds what was cut (also logged).

    Args:
        run_dir: The run directory (created if missing).

    Example:
        >>> import tempfile
        >>> writer = HistoryWriter(tempfile.mkdtemp())
        >>> writer.append([{"generation": 0, "objectives": {"accuracy": 0.5}}])
        >>> read_history(writer.path)
        ([{'generation': 0, 'objectives': {'accuracy': 0.5}}], [])

    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / HISTORY_FILE
        self.dropped = ""
        self._checked = False

    def _repair_tail(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        self.dropped = data[keep:].decode("utf-8", errors="replace")
        _log.warning("%s: dropped a torn last line (%d bytes)", self.path, len(data) - keep)
        self._cut(keep)

    def _cut(self, size: int) -> None:
        with self.path.open("r+b") as handle:
            handle.truncate(size)
            handle.flush()
            os.fsync(handle.fileno())

    def truncate(self, n_records: int) -> int:
        """Keep only the first ``n_records`` lines, e.g. those a resumed checkpoint knew of.

        Records appended after that checkpoint (by the run that crashed) would otherwise appear
        twice once the resumed run evaluates those generations again. A torn tail is dropped too.

        Returns:
            The number of lines removed (0 when the file is missing or already that short).

        Raises:
            ConfigError: ``n_records`` is not an int ``>= 0``.

        """
        if isinstance(n_records, bool) or not isinstance(n_records, int) or n_records < 0:
            raise ConfigError(f"`n_records` must be an int >= 0, got {n_records!r}")
        self._checked = True
        if not self.path.is_file():
            return 0
        data = self.path.read_bytes()
        offset = 0
        for _ in range(n_records):
            end = data.find(b"\n", offset)
            if end < 0:
                break
            offset = end + 1
        extra = data[offset:]
        if not extra:
            return 0
        self._cut(offset)
        removed = extra.count(b"\n") + (0 if extra.endswith(b"\n") else 1)
        _log.info("%s: removed %d lines written after the checkpoint", self.path, removed)
        return removed

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write ``records`` as whole lines with one write, then flush and fsync.

        Raises:
            ConfigError: A record is not a mapping or holds a value JSON cannot store (NaN
                included: use :func:`history_record`, which stores it as null).

        """
        lines = []
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise ConfigError(f"`records[{i}]` must be a mapping, got {type(record).__name__}")
            try:
                lines.append(json.dumps(dict(record), allow_nan=False, separators=(",", ":")))
            except (TypeError, ValueError) as err:
                raise ConfigError(f"`records[{i}]` is not plain JSON: {err}") from err
        if not self._checked:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair_tail()
            self._checked = True
        if not lines:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())


def read_history(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Read ``history.jsonl``.

    Args:
        path: The file (or the run directory that holds it).

    Returns:
        ``(records, warnings)``: the records in file order, and a message for a torn last line
        (a line without its final newline that is not valid JSON), which is skipped.

    Raises:
        ConfigError: The file is missing, or a complete line is not a JSON object; the message
            gives the line number.

    """
    path = Path(path)
    if path.is_dir():
        path = path / HISTORY_FILE
    if not path.is_file():
        raise ConfigError(f"history file not found: {str(path)!r}")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    torn = not text.endswith("\n")  # the last piece has no newline: a write cut short
    if not torn:
        lines = lines[:-1]
    records: list[dict[str, Any]] = []
    warnings: list[str] = []
    for number, line in enumerate(lines, start=1):
        last = number == len(lines)
        if not line.strip():
            continue
        if last and torn:
            # Every record is written with its newline: without one the write was cut short,
            # even where the JSON happens to be complete, and the next append cuts it off.
            warnings.append(
                f"{path}: line {number} is incomplete (a write cut short) and was skipped"
            )
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"{path}: line {number} is not valid JSON ({err.msg}); the history is corrupt"
            ) from err
        if not isinstance(record, dict):
            raise ConfigError(
                f"{path}: line {number} must be a JSON object, got {type(record).__name__}"
            )
        records.append(record)
    return records, warnings
