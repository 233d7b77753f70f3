"""The offline search's history records: built from results, read back to resume a search.

Each record is the callback's ``history.jsonl`` line (:func:`evoaug.search.history_record`) plus
``candidate`` (``g0003-c007``), ``attempts``, ``worker`` and ``predicted`` (the surrogate's
prediction, or null). A resume reads them back by ``(generation, index)``, refusing a history
written with other settings (:data:`FIXED_SETTINGS`) or with other genomes than the search asks
for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evoaug.exceptions import ConfigError
from evoaug.offline._rundir import read_info
from evoaug.offline._task import candidate_id
from evoaug.search import HISTORY_FILE, Candidate, history_record, read_history

__all__ = [
    "FIXED_SETTINGS",
    "Records",
    "check_genomes",
    "load_records",
    "offline_record",
    "record_result",
    "record_values",
]

Records = dict[tuple[int, int], dict[str, Any]]
"""History records by ``(generation, index)``."""

FIXED_SETTINGS = (
    "objectives", "ops", "n_subpolicies", "n_genes", "population_size", "n_offsprings",
    "pool_size", "surrogate", "seed", "budget_epochs", "lower", "recipe_sha256",
)  # fmt: skip
"""Settings that must match between a run and its resumption (generations may grow)."""

_log = logging.getLogger("evoaug.offline")


def offline_record(
    candidate: Candidate,
    result: Mapping[str, Any],
    *,
    generation: int,
    epochs: int,
    task_id: str,
    attempts: int,
    predicted: Mapping[str, float] | None,
) -> dict[str, Any]:
    """The history record of one candidate's result (a lower-level result or a failure)."""
    record = history_record(
        generation=generation,
        epoch=epochs,
        rank=0,
        candidate=candidate,
        objectives=result["objectives"],
        failure=result["failure"],
        seconds=result["seconds"],
    )
    record["candidate"] = task_id
    record["attempts"] = attempts
    record["worker"] = result.get("worker")
    record["predicted"] = None if predicted is None else dict(predicted)
    return record


def record_values(record: Mapping[str, Any], objectives: Sequence[str]) -> list[float]:
    """The record's value of each of ``objectives``, NaN where it has none."""
    values = record.get("objectives") or {}
    out = []
    for name in objectives:
        value = values.get(name)
        out.append(math.nan if value is None else float(value))
    return out


def record_result(record: Mapping[str, Any], objectives: Sequence[str]) -> dict[str, float] | None:
    """The result to tell the search: objective values, or ``None`` for a failed candidate."""
    if record.get("failure") or not isinstance(record.get("objectives"), Mapping):
        return None
    return dict(zip(objectives, record_values(record, objectives), strict=True))


def load_records(run_dir: Path, out: Path, settings: Mapping[str, Any], *, resume: bool) -> Records:
    """The records of ``run_dir``'s history, the first of each candidate; empty without one.

    Args:
        run_dir: The run directory (``out/evoaug``).
        out: The search's output folder, as the messages name it.
        settings: The settings of the search that resumes; those of :data:`FIXED_SETTINGS`
            must equal the ones ``run.json`` recorded.
        resume: Whether a history with records may be continued.

    Raises:
        ConfigError: The history has records and ``resume`` is false, or the run was made with
            other settings.

    """
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return {}
    records, warnings = read_history(path)
    if records and not resume:
        raise ConfigError(
            f"`out` {str(out)!r} already holds a search ({len(records)} candidates in "
            f"{path}); pass `resume=True` (--resume) to continue it, or choose another `out`"
        )
    for message in warnings:
        _log.warning("%s", message)
    saved = read_info(run_dir).get("offline", {}).get("settings", {})
    changed = [k for k in FIXED_SETTINGS if k in saved and saved[k] != settings[k]]
    if changed:
        diff = ", ".join(f"{k}: {saved[k]!r} -> {settings[k]!r}" for k in changed)
        raise ConfigError(
            f"cannot resume {str(out)!r} with other settings ({diff}); use the "
            "settings of the run, or another `out`"
        )
    found: Records = {}
    for record in records:
        key = (int(record["generation"]), int(record["index"]))
        if key in found:
            _log.warning("%s: %s appears twice; the first is kept", path, candidate_id(*key))
            continue
        found[key] = record
    return found


def check_genomes(
    records: Records, generation: int, candidates: Sequence[Candidate], run_dir: Path
) -> None:
    """Check that each recorded candidate of ``generation`` has the genome the search asks for.

    Raises:
        ConfigError: A record holds another genome: the history was written with other
            settings or edited.

    """
    for c in candidates:
        record = records.get((generation, c.index))
        if record is not None and not np.array_equal(
            np.asarray(record["genome"], dtype=np.float64), c.genome
        ):
            raise ConfigError(
                f"{run_dir / HISTORY_FILE}: {candidate_id(generation, c.index)} has "
                "another genome than this search asks for; the history was written with "
                "other settings or edited. Use another `out`"
            )
