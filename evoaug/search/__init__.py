"""Search: NSGA-II over policy genomes (ask/tell), selection from the front, run files.

* :class:`Search` proposes candidates and learns from their scores (pymoo NSGA-II, exact
  plain-value state for checkpoints and DDP).
* :class:`SubPolicyCrossover`, :class:`GeneMutation`, :class:`PolicyDuplicateElimination`:
  operators that respect the genome's structure; :func:`build_nsga2` assembles them.
* :class:`Knee`, :class:`Weights`, :class:`Constraint` (:func:`get_selection`) pick the policy
  that trains next from the front; :data:`DEFAULT_SELECTION` says which by default and why.
* :class:`EvidenceRule` decides whether a challenger replaces the policy that trains (paired
  evidence, lower confidence bounds); :func:`credit_policy` builds a challenger from the ops
  that score well alone.
* :class:`HistoryWriter`, :func:`read_history`, :func:`write_pareto`, :func:`write_best_policy`:
  the run directory's ``history.jsonl``, ``pareto.yaml`` and ``best_policy.yaml``.
"""

from evoaug.search._algorithm import Candidate, build_nsga2
from evoaug.search._credit import (
    CREDIT_PROBABILITY,
    CREDIT_SIZES,
    coverage_policy,
    credit_ops,
    credit_policies,
    op_probe,
)
from evoaug.search._decision import Advantage, Decision, EvidenceRule, decision_score
from evoaug.search._history import HISTORY_FILE, HistoryWriter, history_record, read_history
from evoaug.search._operators import GeneMutation, PolicyDuplicateElimination, SubPolicyCrossover
from evoaug.search._outputs import read_pareto, write_best_policy, write_pareto
from evoaug.search._search import Search
from evoaug.search._selection import (
    DEFAULT_SELECTION,
    SELECTIONS,
    Constraint,
    Knee,
    Weights,
    get_selection,
)
from evoaug.search._selection_base import Selection

__all__ = [
    "CREDIT_PROBABILITY",
    "CREDIT_SIZES",
    "DEFAULT_SELECTION",
    "HISTORY_FILE",
    "SELECTIONS",
    "Advantage",
    "Candidate",
    "Constraint",
    "Decision",
    "EvidenceRule",
    "GeneMutation",
    "HistoryWriter",
    "Knee",
    "PolicyDuplicateElimination",
    "Search",
    "Selection",
    "SubPolicyCrossover",
    "Weights",
    "build_nsga2",
    "coverage_policy",
    "credit_ops",
    "credit_policies",
    "decision_score",
    "get_selection",
    "history_record",
    "op_probe",
    "read_history",
    "read_pareto",
    "write_best_policy",
    "write_pareto",
]
