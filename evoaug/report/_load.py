"""Read a run directory: whatever exists, with a note for whatever is missing or unreadable.

A run directory is ``<trainer log dir>/evoaug/``. Files read (all optional, but at least the
test predictions or the search history must be there):

============================ ==================================================================
file                         what the report takes from it
============================ ==================================================================
``test_predictions.csv``     per-group metrics (columns ``index,y_true,y_pred,group,confidence``;
                             an empty ``group`` means the groups are the classes)
``test_meta.json``           class and group names, sensitive attribute, dataset, model
``history.jsonl``            every evaluated candidate (Pareto plot, hypervolume)
``pareto.yaml``              the final front (highlighted in the Pareto plot)
``best_policy.yaml``         the chosen policy
``timeline.jsonl``           the active policy and its objectives per epoch
``decisions.jsonl``          every swap decision: challenger, incumbent, evidence, outcome
``run.json``                 configuration, schedule, dataset, model, command, versions
``samples.pt``/``.npz``      clean probe images per group (``images`` uint8 ``[N, C, H, W]``,
                             ``labels``, ``groups``) for the grid of augmented samples
``../config.yaml``           LightningCLI's saved configuration
============================ ==================================================================

Policy files are read as plain data (``yaml.safe_load``); a policy whose op is not registered
in this process (a custom op) is kept as its dict, so the report can still show it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evoaug._run_layout import (
    BEST_POLICY_FILE,
    DECISIONS_FILE,
    HISTORY_FILE,
    PARETO_FILE,
    RUN_FILE,
    RUN_SUBDIR,
    TEST_META_FILE,
    TEST_PREDICTIONS_FILE,
    TIMELINE_FILE,
)
from evoaug.exceptions import ConfigError, UnknownOpError
from evoaug.policy import SUPPORTED_VERSIONS, Policy
from evoaug.report._predictions import PredictionTable, read_predictions
from evoaug.report._samples import Samples, read_samples
from evoaug.search import read_history

__all__ = ["CONFIG_FILE", "RunData", "load_run", "policy_dict"]

CONFIG_FILE = "config.yaml"
_MAX_CONFIG_CHARS = 200_000


@dataclass(frozen=True)
class RunData:
    """Everything read from one run directory (``None`` or empty where a file is absent).

    ``notes`` says, in plain words, which files were missing or could not be read and what the
    report does without them.
    """

    run_dir: Path
    info: dict[str, Any]
    meta: dict[str, Any]
    predictions: PredictionTable | None
    history: list[dict[str, Any]]
    pareto: list[dict[str, Any]] | None
    best_policy: dict[str, Any] | None
    timeline: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    config_text: str | None
    samples: Samples | None
    notes: list[str]

    @property
    def label(self) -> str:
        """A short name: the log folder (``version_3``) for a directory named ``evoaug``."""
        if self.run_dir.name == RUN_SUBDIR and self.run_dir.parent.name:
            return self.run_dir.parent.name
        return self.run_dir.name or str(self.run_dir)


def load_run(run_dir: str | Path) -> RunData:
    """Read the files of a run directory that exist.

    Args:
        run_dir: The run directory (``<trainer log dir>/evoaug``); the Trainer's log directory
            itself is accepted too when it holds no run files but an ``evoaug`` folder.

    Returns:
        A :class:`RunData`; its ``notes`` list what is missing or unreadable.

    Raises:
        ConfigError: ``run_dir`` is not a directory, or it holds neither usable test predictions
            (``test_predictions.csv``) nor a search history (``history.jsonl``).

    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"run directory not found: {str(path)!r}")
    if _is_log_dir(path):  # given the Trainer's log dir: its run directory is evoaug/
        path = path / RUN_SUBDIR
    notes: list[str] = []
    info = _read_json_object(path / RUN_FILE, notes, "the summary shows less")
    meta = _read_json_object(path / TEST_META_FILE, notes, "class and group names are ids")
    predictions = read_predictions(path / TEST_PREDICTIONS_FILE, notes)
    history = _read_history(path, notes)
    if predictions is None and not history:
        raise ConfigError(
            f"{str(path)!r} holds neither test predictions ({TEST_PREDICTIONS_FILE!r}) nor an "
            "evaluated candidate in the search history ('history.jsonl'), so there is nothing "
            "to report: " + " ".join(notes)
        )
    return RunData(
        run_dir=path,
        info=info,
        meta=meta,
        predictions=predictions,
        history=history,
        pareto=_read_pareto(path / PARETO_FILE, notes),
        best_policy=_read_policy(path / BEST_POLICY_FILE, notes),
        timeline=_read_jsonl(path / TIMELINE_FILE, notes),
        decisions=_read_jsonl(path / DECISIONS_FILE, notes, missing=None),
        config_text=_read_config(path.parent / CONFIG_FILE),
        samples=read_samples(path, notes),
        notes=notes,
    )


def _is_log_dir(path: Path) -> bool:
    own = (HISTORY_FILE, TEST_PREDICTIONS_FILE, RUN_FILE)
    return not any((path / name).exists() for name in own) and (path / RUN_SUBDIR).is_dir()


def _read_json_object(path: Path, notes: list[str], without: str) -> dict[str, Any]:
    if not path.is_file():
        notes.append(f"{path.name} is missing; {without}.")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        notes.append(f"{path.name} could not be read ({err}); {without}.")
        return {}
    if not isinstance(data, dict):
        notes.append(f"{path.name} must hold a JSON object, got {type(data).__name__}; {without}.")
        return {}
    return data


def _read_history(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    file = path / HISTORY_FILE
    if not file.is_file():
        notes.append("history.jsonl is missing; the search plots are left out.")
        return []
    try:
        records, warnings = read_history(file)
    except ConfigError as err:
        notes.append(f"history.jsonl could not be read ({err}); the search plots are left out.")
        return []
    notes.extend(warnings)
    records = [r for r in records if isinstance(r.get("objectives"), dict) or r.get("failure")]
    if not records:
        notes.append("history.jsonl has no evaluated candidates; the search plots are left out.")
    return records


def _read_jsonl(
    path: Path,
    notes: list[str],
    missing: str | None = "{name} is missing; the per-epoch timeline is left out.",
) -> list[dict[str, Any]]:
    """The JSON-object lines of ``path``; a note for a missing file (unless ``missing=None``)."""
    if not path.is_file():
        if missing is not None:
            notes.append(missing.format(name=path.name))
        return []
    records = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            notes.append(f"{path.name}: line {number} is not valid JSON and was skipped.")
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _read_yaml(path: Path, notes: list[str], without: str) -> Any:
    if not path.is_file():
        notes.append(f"{path.name} is missing; {without}.")
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        notes.append(f"{path.name} could not be read ({err}); {without}.")
        return None


def policy_dict(data: object) -> dict[str, Any] | None:
    """A policy dict: validated by :meth:`Policy.from_dict` when its ops are registered here."""
    if not isinstance(data, dict) or not isinstance(data.get("sub_policies"), list):
        return None
    try:
        return Policy.from_dict(data).to_dict()
    except UnknownOpError:
        pass  # a custom op not registered in this process: keep it if otherwise valid
    except ConfigError:
        return None
    subs = data["sub_policies"]
    if data.get("format_version") not in SUPPORTED_VERSIONS or not subs:
        return None
    for sub in subs:
        if not isinstance(sub, list) or not sub or not all(_gene_shaped(g) for g in sub):
            return None
    return dict(data)


def _gene_shaped(gene: object) -> bool:
    if not isinstance(gene, dict) or not isinstance(gene.get("op"), str):
        return False
    numbers = [gene.get("probability"), gene.get("level")]
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1
        for v in numbers
    )


def _read_policy(path: Path, notes: list[str]) -> dict[str, Any] | None:
    data = _read_yaml(path, notes, "the chosen policy is taken from the timeline, if any")
    if data is None:
        return None
    policy = policy_dict(data)
    if policy is None:
        notes.append(f"{path.name} is not a valid policy file; it is left out.")
    return policy


def _read_pareto(path: Path, notes: list[str]) -> list[dict[str, Any]] | None:
    data = _read_yaml(path, notes, "the front is recomputed from the history")
    if data is None:
        return None
    if not isinstance(data, list):
        notes.append(f"{path.name} must hold a list; the front is recomputed from the history.")
        return None
    front = []
    for entry in data:
        objectives = entry.get("objectives") if isinstance(entry, dict) else None
        if not isinstance(objectives, dict):
            notes.append(f"{path.name} has a malformed entry; the front is recomputed.")
            return None
        policy = policy_dict(entry.get("policy"))
        front.append({"policy": policy, "objectives": _numbers(objectives)})
    return front


def _numbers(values: dict[Any, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in values.items():
        number = (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None
        )
        out[str(key)] = number if number is not None and math.isfinite(number) else None
    return out


def _read_config(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if len(text) > _MAX_CONFIG_CHARS:
        text = text[:_MAX_CONFIG_CHARS] + "\n# ... (cut)\n"
    return text
