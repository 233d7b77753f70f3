"""Names and task facts of a run: from ``test_meta.json``, then ``run.json``'s dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evoaug.report._load import RunData

__all__ = ["RunNames", "get", "mapping"]


def get(data: Mapping[str, Any], *keys: str) -> Any:
    """``data[k1][k2]...``, or ``None`` where a level is missing or not a mapping."""
    value: Any = data
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def mapping(value: object) -> dict[str, Any]:
    """``value`` as a dict with string keys; ``{}`` when it is not a mapping."""
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _names(values: object) -> dict[int, str]:
    return {i: str(v) for i, v in enumerate(values)} if isinstance(values, list) else {}


class RunNames:
    """Class and group names, where the groups come from, and whether the task is binary.

    Attributes:
        class_names: Class id -> name.
        group_names: Group id -> name (the class names when the groups are the classes).
        groups_source: ``"sensitive attribute"`` or ``"classes"``.
        sensitive_attribute: Its name, or ``None``.
        binary: Two classes (from the recorded number of classes, else the labels seen).

    """

    def __init__(self, run: RunData) -> None:
        dataset = mapping(run.info.get("dataset"))
        meta = run.meta
        self.class_names = _names(meta.get("class_names")) or _names(get(dataset, "class_names"))
        predictions = run.predictions
        # run.json's groups_source is the search's (fairness_groups); the test predictions say
        # what their own `group` column holds, so it speaks only when there are none.
        source = meta.get("groups_source")
        if predictions is None:
            source = source or run.info.get("groups_source")
        from_classes = (predictions is not None and predictions.groups_from_classes) or (
            source == "classes"
        )
        self.groups_source = "classes" if from_classes else str(source or "sensitive attribute")
        if from_classes:
            self.group_names = dict(self.class_names)
        else:
            self.group_names = (
                (predictions.group_labels if predictions is not None else {})
                or _names(meta.get("group_names"))
                or _names(get(dataset, "group_names"))
            )
        attribute = meta.get("sensitive_attribute") or get(dataset, "sensitive_attribute")
        self.sensitive_attribute = None if from_classes or not attribute else str(attribute)
        num_classes = meta.get("num_classes") or get(dataset, "num_classes")
        if not isinstance(num_classes, int) and self.class_names:
            num_classes = len(self.class_names)
        if isinstance(num_classes, int):
            self.binary = num_classes == 2
        elif predictions is not None:
            labels = set(predictions.y_true.tolist()) | set(predictions.y_pred.tolist())
            self.binary = labels == {0, 1}
        else:
            self.binary = False
