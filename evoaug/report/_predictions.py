"""``test_predictions.csv``: the test set's labels, predictions and groups.

Columns ``index,y_true,y_pred,group,confidence`` (header row); ``y_true`` and ``y_pred`` are
required. ``group`` holds integer group ids, or group names as text (ids then follow the names'
sorted order); when it is empty in every row, the groups are the classes. The format is
documented where it is written, :mod:`evoaug.models._predictions`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PredictionTable", "read_predictions"]


@dataclass(frozen=True)
class PredictionTable:
    """Test predictions as NumPy arrays of equal length.

    ``group`` holds integer group ids; ``groups_from_classes`` is true when the CSV's ``group``
    column was empty and the classes were used instead.
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    group: np.ndarray
    confidence: np.ndarray | None
    groups_from_classes: bool
    group_labels: dict[int, str] = field(default_factory=dict)  # names found in the CSV itself

    def __len__(self) -> int:
        return int(self.y_true.shape[0])


def read_predictions(path: Path, notes: list[str]) -> PredictionTable | None:
    """The predictions, or ``None`` with a note saying why (missing or unreadable)."""
    without = "the per-group metrics are left out"
    if not path.is_file():
        notes.append(
            f"{path.name} is missing (it is written by evoaug.models.Classifier at the end of "
            f"trainer.test); {without}."
        )
        return None
    try:
        return _parse_predictions(path)
    except (OSError, ValueError, csv.Error) as err:
        notes.append(f"{path.name} could not be read ({err}); {without}.")
        return None


def _parse_predictions(path: Path) -> PredictionTable:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for needed in ("y_true", "y_pred"):
            if needed not in columns:
                raise ValueError(f"column {needed!r} is missing; columns found: {columns}")
        rows = list(reader)
    if not rows:
        raise ValueError("it has no rows")
    y_true = np.array([_int(r, "y_true", i) for i, r in enumerate(rows, start=2)], dtype=np.int64)
    y_pred = np.array([_int(r, "y_pred", i) for i, r in enumerate(rows, start=2)], dtype=np.int64)
    raw = [(r.get("group") or "").strip() for r in rows]
    labels: dict[int, str] = {}
    if all(not g for g in raw):
        group, from_classes = y_true.copy(), True
    elif any(not g for g in raw):
        line = next(i for i, g in enumerate(raw, start=2) if not g)
        raise ValueError(f"line {line}: `group` is empty while other rows have one")
    else:
        from_classes = False
        try:
            group = np.array([int(g) for g in raw], dtype=np.int64)
        except ValueError:  # group names written as text: ids by sorted name
            names = sorted(set(raw))
            labels = dict(enumerate(names))
            ids = {name: i for i, name in labels.items()}
            group = np.array([ids[g] for g in raw], dtype=np.int64)
    confidence = None
    if "confidence" in columns:
        try:
            values = np.array([float(r.get("confidence") or "nan") for r in rows])
            confidence = values if np.all(np.isfinite(values)) else None
        except ValueError:
            confidence = None
    return PredictionTable(y_true, y_pred, group, confidence, from_classes, labels)


def _int(row: dict[str, Any], column: str, line: int) -> int:
    value = (row.get(column) or "").strip()
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"line {line}: `{column}` must be an integer, got {value!r}") from None
