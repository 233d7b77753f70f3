"""The run directory's layout: every file name and group-source name, defined once.

A fit with :class:`~evoaug.EvoAugCallback` writes into ``<trainer log dir>/evoaug/``; the offline
search writes the same files into its ``--out`` folder; :mod:`evoaug.report` reads them back.
The writers (search, callback, models) and the reader (report) import these names from here.

=======================  ==================================================================
file                     written by
=======================  ==================================================================
``history.jsonl``        the search: every evaluated candidate, appended per generation
``pareto.yaml``          the search: the current Pareto front
``best_policy.yaml``     the search: the policy training uses now, with its objectives
``decisions.jsonl``      the callback: every swap decision (challenger, incumbent, evidence)
``timeline.jsonl``       the callback: the policy each epoch trained with
``run.json``             the callback: settings, schedule, dataset, versions, command line
``samples.pt``           the callback: a few clean validation images per group, for the report
``test_predictions.csv`` :class:`~evoaug.models.Classifier`: test predictions per image
``test_meta.json``       :class:`~evoaug.models.Classifier`: class and group names
=======================  ==================================================================
"""

from __future__ import annotations

__all__ = [
    "BEST_POLICY_FILE",
    "DECISIONS_FILE",
    "GROUPS_FROM_CLASSES",
    "GROUPS_FROM_SENSITIVE",
    "GROUP_SOURCES",
    "HISTORY_FILE",
    "PARETO_FILE",
    "RUN_FILE",
    "RUN_FILES",
    "RUN_SUBDIR",
    "SAMPLES_FILE",
    "TEST_META_FILE",
    "TEST_PREDICTIONS_FILE",
    "TIMELINE_FILE",
]

RUN_SUBDIR = "evoaug"
"""The run directory's name inside a Trainer's log directory."""

HISTORY_FILE = "history.jsonl"
PARETO_FILE = "pareto.yaml"
BEST_POLICY_FILE = "best_policy.yaml"
DECISIONS_FILE = "decisions.jsonl"
TIMELINE_FILE = "timeline.jsonl"
RUN_FILE = "run.json"
SAMPLES_FILE = "samples.pt"
TEST_PREDICTIONS_FILE = "test_predictions.csv"
TEST_META_FILE = "test_meta.json"

RUN_FILES = (
    HISTORY_FILE, TIMELINE_FILE, RUN_FILE, PARETO_FILE, BEST_POLICY_FILE, SAMPLES_FILE,
    TEST_PREDICTIONS_FILE, TEST_META_FILE, DECISIONS_FILE,
)  # fmt: skip
"""What one run writes and its report reads: a new (not resumed) fit replaces them all."""

GROUPS_FROM_SENSITIVE = "sensitive attribute"
"""``groups_source`` when fairness groups are a sensitive attribute carried by the batches."""
GROUPS_FROM_CLASSES = "classes"
"""``groups_source`` when fairness groups are the classes (worst-class accuracy)."""
GROUP_SOURCES = (GROUPS_FROM_SENSITIVE, GROUPS_FROM_CLASSES)
