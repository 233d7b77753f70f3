"""Offline bilevel search: every candidate policy trains a fresh model (``evoaug search``).

The online :class:`~evoaug.EvoAugCallback` scores candidates with a cheap look-ahead on the live
model. The offline search answers the full-fidelity question instead: the upper level (NSGA-II,
:class:`evoaug.search.Search`) proposes policies, the lower level trains a fresh model with each
for a fixed budget and scores the same objectives on held-out validation data. It writes the
callback's run-directory format, so ``evoaug report`` reads it and its ``best_policy.yaml`` can
seed the callback (``initial_policy=path``).

* :class:`OfflineSearch`: the loop (surrogate pre-screening, resume from the history).
* :class:`RecipeTrainer`: the lower level from a LightningCLI recipe;
  :class:`SyntheticObjectives`: a cheap stand-in for tests and benchmarks.
* :class:`Surrogate`: random forest or Gaussian process on op-usage features.
* :class:`SerialRunner`, :class:`ProcessRunner` (default), :class:`RayRunner`,
  :class:`DaskRunner` (optional extras ``evoaug[ray]``, ``evoaug[dask]``): where candidates run.
"""

from evoaug.offline._cluster import DaskRunner, RayRunner, check_address
from evoaug.offline._command import run_search_command
from evoaug.offline._dispatch import RUNNERS, make_runner, run_tasks
from evoaug.offline._features import op_usage
from evoaug.offline._runner import ProcessRunner, Runner, SerialRunner
from evoaug.offline._search import OfflineSearch
from evoaug.offline._surrogate import SURROGATES, ScreenedMating, Surrogate, prediction_error
from evoaug.offline._synthetic import SyntheticObjectives
from evoaug.offline._task import LowerLevel, candidate_id, evaluate_task
from evoaug.offline._trainer import RecipeTrainer

__all__ = [
    "RUNNERS",
    "SURROGATES",
    "DaskRunner",
    "LowerLevel",
    "OfflineSearch",
    "ProcessRunner",
    "RayRunner",
    "RecipeTrainer",
    "Runner",
    "ScreenedMating",
    "SerialRunner",
    "Surrogate",
    "SyntheticObjectives",
    "candidate_id",
    "check_address",
    "evaluate_task",
    "make_runner",
    "op_usage",
    "prediction_error",
    "run_search_command",
    "run_tasks",
]
