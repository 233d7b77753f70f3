"""The offline bilevel search: NSGA-II above, a fresh training per candidate below.

Run directory (``out/evoaug/``, the callback's layout, so ``evoaug report out`` works):

- ``history.jsonl``: one record per evaluated candidate, appended (and fsynced) as soon as its
  result arrives, with the callback's fields plus ``candidate`` (``g0003-c007``), ``attempts``,
  ``worker`` and ``predicted`` (the surrogate's prediction, or null);
- ``pareto.yaml`` and ``best_policy.yaml``, rewritten after every generation;
- ``surrogate.jsonl``: the surrogate's prediction error per generation;
- ``run.json``: settings, progress and hypervolume; ``samples.pt`` for the report's grid;
- ``out/config.yaml``: the recipe, when the lower level came from one.

**Resume.** The search is deterministic given its settings and the results it was told, so
``resume=True`` rebuilds it by replaying the history: each generation is asked again, the
recorded results are told, and only candidates without a record are evaluated. No candidate is
evaluated twice and none is lost; a history that does not match the settings is an error.

The records and their checks on resume are in :mod:`evoaug.offline._records`, the other files of
the run directory in :mod:`evoaug.offline._rundir`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evoaug._checks import check_int, check_number
from evoaug._run_layout import RUN_SUBDIR
from evoaug.exceptions import ConfigError
from evoaug.genome import GenomeSpace
from evoaug.offline._dispatch import run_tasks
from evoaug.offline._records import (
    Records,
    check_genomes,
    load_records,
    offline_record,
    record_result,
    record_values,
)
from evoaug.offline._rundir import (
    run_info,
    write_config,
    write_front,
    write_info,
    write_surrogate_log,
)
from evoaug.offline._runner import ProcessRunner, Runner
from evoaug.offline._surrogate import (
    SURROGATES,
    ScreenedMating,
    Surrogate,
    prediction_error,
    surrogate_summary,
)
from evoaug.offline._task import LowerLevel, candidate_id
from evoaug.policy import Policy
from evoaug.search import (
    Candidate,
    HistoryWriter,
    Search,
    Selection,
    build_nsga2,
    get_selection,
)

__all__ = ["OfflineSearch"]

_log = logging.getLogger("evoaug.offline")


class OfflineSearch:
    """Bilevel augmentation search: NSGA-II proposes policies, each is trained from scratch.

    The upper level is :class:`evoaug.search.Search` (NSGA-II, ask/tell). The lower level is any
    :class:`~evoaug.offline.LowerLevel`: :class:`~evoaug.offline.RecipeTrainer` trains a fresh
    model from a recipe for a fixed number of epochs and scores the objectives on held-out
    validation data; :class:`~evoaug.offline.SyntheticObjectives` stands in for it in tests.
    Candidates are evaluated in parallel by a :class:`~evoaug.offline.Runner`.

    With a surrogate (``"rf"`` or ``"gp"``, see :class:`~evoaug.offline.Surrogate`), every
    generation after the first breeds ``round(pool_factor * population_size)`` children and
    trains the ``keep_fraction`` of them the surrogate ranks best (by default 4 x P bred, P
    trained). Without (``"none"``), NSGA-II's P children are all trained.

    Args:
        lower: The lower level (picklable, for process and cluster runners).
        out: Output folder; the run files go to ``out/evoaug/`` (see the module docs).
        generations: Generations to complete, the first (initial population) included.
        population_size: P; default: ``lower.population_size`` if it has one, else 16.
        space: Genome space; default: ``lower.space``, else all built-in ops, K=5, L=2.
        seed: Seed of the search (and of every candidate's training); default ``lower.seed``
            or 0.
        surrogate: ``"gp"``, ``"rf"`` or ``"none"``. The Gaussian process is the default: on
            ``bench/surrogate.py`` it reached a given hypervolume in the fewest trainings.
        pool_factor: Children bred per generation, as a multiple of P (surrogate only).
        keep_fraction: Fraction of the bred children that is trained (surrogate only).
        initial_policies: Policies of the first population; default
            ``lower.initial_policies``, else none.
        selection: Picks ``best_policy.yaml`` from the front: a name or a
            :class:`~evoaug.search.Selection`; default ``lower.selection``, else ``"weights"``.
        max_attempts: Tries per candidate when workers die, before it is recorded as failed.

    Raises:
        ConfigError: A bad argument; the message names it, the allowed values and what was
            given.

    Example:
        >>> import tempfile
        >>> from evoaug import GenomeSpace
        >>> from evoaug.offline import SerialRunner, SyntheticObjectives
        >>> search = OfflineSearch(
        ...     SyntheticObjectives(objectives=("accuracy", "diversity")),
        ...     out=tempfile.mkdtemp(), generations=3, population_size=8, surrogate="rf",
        ...     space=GenomeSpace(["Identity", "Invert", "Rotate", "Zoom"], n_subpolicies=2))
        >>> front = search.run(SerialRunner())
        >>> search.n_evaluated, len(front) >= 1, len(search.surrogate_log)
        (24, True, 2)

    """

    def __init__(
        self,
        lower: LowerLevel,
        *,
        out: str | Path,
        generations: int,
        population_size: int | None = None,
        space: GenomeSpace | None = None,
        seed: int | None = None,
        surrogate: str = "gp",
        pool_factor: float = 4.0,
        keep_fraction: float = 0.25,
        initial_policies: Sequence[Policy] | None = None,
        selection: str | Selection | None = None,
        max_attempts: int = 3,
    ) -> None:
        if not callable(lower) or not isinstance(getattr(lower, "objectives", None), tuple):
            raise ConfigError(
                "`lower` must be callable as lower(policy, seed=...) and have an `objectives` "
                f"tuple (e.g. evoaug.offline.RecipeTrainer), got {lower!r}"
            )
        self.lower = lower
        self.objectives: tuple[str, ...] = lower.objectives
        self.out = Path(out)
        self.run_dir = self.out / RUN_SUBDIR
        self.generations = check_int("generations", generations, low=1)
        if population_size is None:
            population_size = getattr(lower, "population_size", 16)
        self.population_size = check_int("population_size", population_size, low=4)
        self.space = space if space is not None else getattr(lower, "space", None) or GenomeSpace()
        self.seed = check_int("seed", getattr(lower, "seed", 0) if seed is None else seed, low=0)
        if surrogate not in SURROGATES:
            raise ConfigError(f"`surrogate` must be one of {list(SURROGATES)}, got {surrogate!r}")
        self.surrogate_kind = surrogate
        self.pool_factor = check_number("pool_factor", pool_factor, low=1.0)
        self.keep_fraction = check_number(
            "keep_fraction", keep_fraction, low=0.0, high=1.0, low_open=True
        )
        self.max_attempts = check_int("max_attempts", max_attempts, low=1)
        if initial_policies is None:
            initial_policies = getattr(lower, "initial_policies", ())
        self.initial_policies = tuple(initial_policies)[: self.population_size]
        if selection is None:
            selection = getattr(lower, "selection", None) or "weights"
        self.selection = get_selection(selection)
        self.selection.validate(self.objectives)
        if surrogate == "none":
            self.n_offsprings, self.pool_size = self.population_size, self.population_size
        else:
            self.pool_size = max(1, round(self.pool_factor * self.population_size))
            self.n_offsprings = max(1, round(self.keep_fraction * self.pool_size))
        self.surrogate: Surrogate | None = (
            None
            if surrogate == "none"
            else Surrogate(self.space, self.objectives, kind=surrogate, seed=self.seed)
        )
        self.n_evaluated = 0
        """Candidates evaluated by this object's :meth:`run` calls (replayed ones excluded)."""
        self.surrogate_log: list[dict[str, Any]] = []
        """One entry per generation screened by the surrogate (``surrogate.jsonl``)."""
        self.search: Search | None = None
        self._records: Records = {}

    # ------------------------------------------------------------------ settings

    def settings(self) -> dict[str, Any]:
        """The settings recorded in ``run.json`` (plain values)."""
        return {
            "objectives": list(self.objectives),
            "ops": list(self.space.ops),
            "n_subpolicies": self.space.n_subpolicies,
            "n_genes": self.space.n_genes,
            "population_size": self.population_size,
            "n_offsprings": self.n_offsprings,
            "pool_size": self.pool_size,
            "surrogate": self.surrogate_kind,
            "pool_factor": self.pool_factor,
            "keep_fraction": self.keep_fraction,
            "seed": self.seed,
            "budget_epochs": getattr(self.lower, "budget_epochs", None),
            "lower": type(self.lower).__name__,
            # The lower level's own settings (RecipeTrainer: the recipe), when it says them.
            "recipe_sha256": getattr(self.lower, "fingerprint", None),
            "generations": self.generations,
            "selection": repr(self.selection),
            "max_attempts": self.max_attempts,
        }

    def _build_search(self) -> Search:
        algorithm = build_nsga2(
            self.space, population_size=self.population_size, n_offsprings=self.n_offsprings
        )
        if self.surrogate is not None:
            algorithm.mating = ScreenedMating(algorithm.mating, self.pool_size, self._screen)
        return Search(
            self.space,
            self.objectives,
            population_size=self.population_size,
            seed=self.seed,
            initial_policies=self.initial_policies,
            n_offsprings=self.n_offsprings,
            algorithm=algorithm,
        )

    def _screen(self, genomes: np.ndarray, k: int) -> list[int]:
        assert self.surrogate is not None  # only installed with a surrogate
        return self.surrogate.rank(genomes, k)

    # ------------------------------------------------------------------ the loop

    def run(self, runner: Runner | None = None, *, resume: bool = False) -> list[Any]:
        """Run (or continue) the search to :attr:`generations`; return the Pareto front.

        Args:
            runner: Where candidates are evaluated; default: a :class:`ProcessRunner` of two
                workers, closed at the end (a runner passed in is left open).
            resume: Continue from ``out/evoaug/history.jsonl`` (see the module docs).

        Returns:
            The final front as ``(policy, objectives)`` pairs, objectives higher-better.

        Raises:
            ConfigError: ``out`` holds a search and ``resume`` is false; the history was made
                with other settings or does not match them.

        """
        self._records = load_records(self.run_dir, self.out, self.settings(), resume=resume)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._records:
            _log.info("resuming %s: %d candidates in the history", self.run_dir, len(self._records))
        prepare = getattr(self.lower, "prepare", None)
        prepared = prepare(self.run_dir) if callable(prepare) else {}
        config = getattr(self.lower, "config", None)
        if isinstance(config, Mapping):
            write_config(self.out, config)
        write_info(self.run_dir, run_info(self.settings(), prepared))
        self.search = self._build_search()
        self.surrogate_log = []
        own = runner is None
        active = ProcessRunner(2) if runner is None else runner
        try:
            for generation in range(self.generations):
                self._generation(active, generation)
        finally:
            if own:
                active.close()
        return self.search.pareto_front()

    def _fit_surrogate(self, generation: int) -> None:
        if self.surrogate is None or generation == 0:
            return
        keys = sorted(k for k in self._records if k[0] < generation)
        X = np.array([self._records[k]["genome"] for k in keys], dtype=np.float64)
        Y = [record_values(self._records[k], self.objectives) for k in keys]
        self.surrogate.fit(X, np.array(Y, dtype=np.float64))

    def _generation(self, runner: Runner, generation: int) -> None:
        search = self.search
        assert search is not None  # set by run()
        started = time.perf_counter()
        self._fit_surrogate(generation)
        candidates = search.ask()
        genomes = np.array([c.genome for c in candidates])
        predicted = None
        if self.surrogate is not None and self.surrogate.fitted and generation > 0:
            predicted = self.surrogate.predict(genomes)[0]
        check_genomes(self._records, generation, candidates, self.run_dir)
        missing = [c for c in candidates if (generation, c.index) not in self._records]
        if missing:
            self._evaluate(runner, generation, missing, predicted)
        records = [self._records[(generation, c.index)] for c in candidates]
        search.tell([record_result(r, self.objectives) for r in records])
        self._write_generation(generation, records, predicted)
        failed = sum(1 for r in records if r.get("failure"))
        _log.info(
            "generation %d/%d: %d candidates (%d evaluated now, %d failed) in %.1f s; front of %d; "
            "hypervolume %.4f",
            generation + 1,
            self.generations,
            len(candidates),
            len(missing),
            failed,
            time.perf_counter() - started,
            len(search.pareto_front()),
            search.hypervolume_history[-1],
        )

    def _evaluate(
        self,
        runner: Runner,
        generation: int,
        candidates: Sequence[Candidate],
        predicted: np.ndarray | None,
    ) -> None:
        writer = HistoryWriter(self.run_dir)
        by_id = {candidate_id(generation, c.index): c for c in candidates}
        tasks = [
            {"candidate": cid, "policy": c.policy.to_dict(), "seed": self.seed}
            for cid, c in by_id.items()
        ]
        epochs = getattr(self.lower, "budget_epochs", 0) or 0

        def on_result(task: Mapping[str, Any], result: Mapping[str, Any], attempts: int) -> None:
            c = by_id[task["candidate"]]
            key = (generation, c.index)
            if key in self._records:  # a result can only be recorded once
                return
            guess = (
                None
                if predicted is None
                else dict(zip(self.objectives, map(float, predicted[c.index]), strict=True))
            )
            record = offline_record(
                c,
                result,
                generation=generation,
                epochs=epochs,
                task_id=task["candidate"],
                attempts=attempts,
                predicted=guess,
            )
            writer.append([record])
            self._records[key] = record
            self.n_evaluated += 1
            status = result["failure"] or ", ".join(
                f"{k} {v:.4f}" for k, v in (result["objectives"] or {}).items()
            )
            _log.info("%s (try %d): %s", task["candidate"], attempts, status)

        run_tasks(runner, self.lower, tasks, on_result, max_attempts=self.max_attempts)

    def _write_generation(
        self, generation: int, records: Sequence[Mapping[str, Any]], predicted: np.ndarray | None
    ) -> None:
        search = self.search
        assert search is not None
        write_front(self.run_dir, search.pareto_front(), self.selection, generation)
        if predicted is not None and self.surrogate is not None:
            actual = [record_values(r, self.objectives) for r in records]
            error = prediction_error(self.objectives, predicted, np.array(actual, dtype=np.float64))
            entry = surrogate_summary(
                generation, self.surrogate, self.pool_size, len(records), error
            )
            self.surrogate_log.append(entry)
            write_surrogate_log(self.run_dir, self.surrogate_log)
            _log.info(
                "surrogate at generation %d: MAE %s; Spearman %s",
                generation,
                _fmt(error["mae"]),
                _fmt(error["spearman"]),
            )
        write_info(
            self.run_dir,
            {
                "offline": {
                    "generations_done": generation + 1,
                    "evaluations": len(self._records),
                    "hypervolume": list(search.hypervolume_history),
                }
            },
        )


def _fmt(values: Mapping[str, float | None]) -> str:
    return ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in values.items())
