"""Scoring candidate policies on the live model: probes, optimizer specs and the Evaluator.

Nothing here imports Lightning: the callback, the offline search and the tests drive the same
:class:`Evaluator` with a torch model, a loss, an :class:`OptimizerSpec` and two probes.
"""

from evoaug._probe import Probe, random_probe, stratified_probe
from evoaug.evaluate._accuracy import (
    clean_correct,
    clean_correct_if_fitted,
    clean_correct_if_left_behind,
)
from evoaug.evaluate._evaluator import CandidateResult, Evaluator
from evoaug.evaluate._evidence import Evidence, gather_evidence
from evoaug.evaluate._optim import OPTIMIZERS, OptimizerSpec

__all__ = [
    "OPTIMIZERS",
    "CandidateResult",
    "Evaluator",
    "Evidence",
    "OptimizerSpec",
    "Probe",
    "clean_correct",
    "clean_correct_if_fitted",
    "clean_correct_if_left_behind",
    "gather_evidence",
    "random_probe",
    "stratified_probe",
]
