"""Objectives that score a candidate policy, and the registry for custom ones.

Built-ins: ``accuracy``, ``difficulty``, ``diversity`` and ``fairness``; all "higher is better".
"""

from evoaug.objectives._base import (
    ESTIMATORS,
    CandidateContext,
    CandidateFailure,
    Objective,
    ProbePredictions,
    available_objectives,
    check_estimator,
    get_objective,
    register_objective,
    unregister_objective,
)
from evoaug.objectives._builtin import Accuracy, Difficulty, Diversity
from evoaug.objectives._fairness import BINARY_FAIRNESS_METRICS, FAIRNESS_METRICS, Fairness

__all__ = [
    "BINARY_FAIRNESS_METRICS",
    "ESTIMATORS",
    "FAIRNESS_METRICS",
    "Accuracy",
    "CandidateContext",
    "CandidateFailure",
    "Difficulty",
    "Diversity",
    "Fairness",
    "Objective",
    "ProbePredictions",
    "available_objectives",
    "check_estimator",
    "get_objective",
    "register_objective",
    "unregister_objective",
]
