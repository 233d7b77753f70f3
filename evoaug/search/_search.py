"""Search: NSGA-II over policy genomes through ask/tell, with exact, plain-value state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.population import Population
from pymoo.core.termination import NoTermination
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.genome import GenomeSpace
from evoaug.policy import Policy
from evoaug.search._algorithm import (
    MIN_POPULATION_SIZE,
    Candidate,
    GenomeProblem,
    build_nsga2,
    population_labels,
    restore_algorithm,
)
from evoaug.search._inputs import (
    check_algorithm,
    check_objectives,
    encode_initial,
    failure_penalty,
    parse_results,
)
from evoaug.search._state import SearchSnapshot, search_config, sha256

__all__ = ["HV_REFERENCE", "Search"]

HV_REFERENCE = 1.1  # reference point, per objective, in the normalized space (see Search)
_TELL_WITHOUT_ASK = (
    "`tell` needs a pending `ask`: call `ask()`, score every candidate, then `tell(results)`"
)


def _readonly(x: np.ndarray) -> np.ndarray:
    out = np.array(x, dtype=np.float64, copy=True)
    out.flags.writeable = False
    return out


class Search:
    """Multi-objective search of augmentation policies with NSGA-II (Deb et al., 2002), ask/tell.

    ``ask()`` returns the candidates to score; ``tell(results)`` takes one mapping of objective
    values per candidate, **higher is better** (pymoo minimizes their negatives). The first
    population is ``initial_policies`` (e.g. presets, encoded into ``space``) followed by uniform
    random genomes; all randomness comes from one ``numpy`` generator seeded with ``seed``, so
    two searches with the same arguments and the same results ask for the same genomes, on
    every DDP rank.

    **Failures.** A result that is ``None`` or holds a NaN or infinite value scores worst on every
    objective: ``lowest - max(1, highest - lowest)``, where ``lowest`` and ``highest`` are the
    extreme finite values of that objective seen in all tells so far (``0`` before any finite
    value). Failed individuals still in the population are re-scored at every tell, so they stay
    below every finite value; they never appear in :meth:`pareto_front`, and :attr:`population`
    reports NaN for them.

    **Hypervolume.** After every tell, :attr:`hypervolume_history` gets the hypervolume of the
    population's finite points in a normalized space fixed at the first tell that had a finite
    result: each objective is shifted and scaled so that the best value of that first batch is 0
    and its worst is 1 (minimization form), and the reference point is 1.1 on every axis (the
    first population's nadir plus 10% of its range). It is 0 before that tell. The values are
    comparable within one run, not across runs.

    Args:
        space: The genome space searched.
        objectives: Names of the objectives, in the order results are read.
        population_size: Individuals kept per generation (at least 4).
        seed: Seed of the search's random generator.
        initial_policies: Policies placed in the first population (at most ``population_size``;
            duplicates are dropped); the rest is random.
        n_offsprings: Candidates per generation after the first; ``None`` = ``population_size``.
        algorithm: A pymoo genetic algorithm to use instead of :func:`build_nsga2` (e.g. with
            pymoo's SBX/PM); its first population is replaced as above. Exact resume is
            supported for NSGA-II-like algorithms whose state is the population and the RNG.

    Raises:
        ConfigError: A bad argument; the message names it and says what was received.

    Example:
        >>> from evoaug import GenomeSpace, Policy
        >>> space = GenomeSpace(ops=["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=1)
        >>> search = Search(space, ["accuracy", "fairness"], population_size=4,
        ...                 initial_policies=[Policy.preset("identity")])
        >>> candidates = search.ask()
        >>> candidates[0].policy.ops
        ('Identity',)
        >>> search.tell([{"accuracy": c.genome[2], "fairness": c.genome[5]} for c in candidates])
        >>> search.generation, len(search.pareto_front()) >= 1
        (1, True)

    """

    def __init__(
        self,
        space: GenomeSpace,
        objectives: Sequence[str],
        *,
        population_size: int = 16,
        seed: int = 0,
        initial_policies: Sequence[Policy] = (),
        n_offsprings: int | None = None,
        algorithm: Any = None,
    ) -> None:
        if not isinstance(space, GenomeSpace):
            raise ConfigError(f"`space` must be an evoaug.GenomeSpace, got {type(space).__name__}")
        self.space = space
        self.objectives = check_objectives(objectives)
        self.population_size = check_int(
            "population_size", population_size, low=MIN_POPULATION_SIZE
        )
        self.seed = check_int("seed", seed, low=0)
        if n_offsprings is not None:
            n_offsprings = check_int("n_offsprings", n_offsprings, low=1)
        if algorithm is None:
            algorithm = build_nsga2(
                space, population_size=self.population_size, n_offsprings=n_offsprings
            )
        else:
            check_algorithm(algorithm, self.population_size, n_offsprings)
        self.n_offsprings = int(algorithm.n_offsprings)
        self._initial = encode_initial(space, initial_policies, self.population_size)
        problem = GenomeProblem(space.dim, len(self.objectives))
        algorithm.setup(problem, seed=self.seed, termination=NoTermination(), verbose=False)
        self._algorithm = algorithm
        self.generation = 0
        """Number of completed :meth:`tell` calls."""
        self.n_eval = 0
        """Number of candidates told so far."""
        self.hypervolume_history: list[float] = []
        self._pending: np.ndarray | None = None
        self._seen_low = np.full(len(self.objectives), np.nan)  # minimization form
        self._seen_high = np.full(len(self.objectives), np.nan)
        self._hv_ideal: np.ndarray | None = None
        self._hv_scale: np.ndarray | None = None

    # ---------------------------------------------------------------- ask / tell

    def ask(self) -> list[Candidate]:
        """The candidates to score now; asking again before :meth:`tell` returns the same ones."""
        if self._pending is None:
            self._pending = self._next_genomes()
        return [
            Candidate(i, _readonly(x), self.space.decode(x)) for i, x in enumerate(self._pending)
        ]

    def _next_genomes(self) -> np.ndarray:
        algorithm = self._algorithm
        if not algorithm.is_initialized:
            n_random = self.population_size - len(self._initial)
            randoms = self.space.random(algorithm.random_state, n_random)
            algorithm.initialization.sampling = np.vstack([self._initial, randoms])
        infills = algorithm.ask()
        if infills is None or len(infills) == 0:
            # Every child duplicated the population (a converged search): random immigrants.
            algorithm.termination.force_termination = False
            return self.space.random(algorithm.random_state, self.n_offsprings)
        return np.array(infills.get("X"), dtype=np.float64).reshape(len(infills), -1)

    def tell(self, results: Sequence[Mapping[str, float] | None]) -> None:
        """Score the asked candidates: one mapping (or ``None`` for a failure) each, in order.

        Keys beyond :attr:`objectives` are ignored (evaluators may report extra metrics).

        Raises:
            ConfigError: No pending ask, a wrong number of results, a missing objective or a
                value that is not a real number.

        """
        if self._pending is None:
            raise ConfigError(_TELL_WITHOUT_ASK)
        F, failed = parse_results(results, self.objectives, len(self._pending))
        if np.any(~failed):
            self._seen_low = np.fmin(self._seen_low, F[~failed].min(axis=0))
            self._seen_high = np.fmax(self._seen_high, F[~failed].max(axis=0))
        penalty = failure_penalty(self._seen_low, self._seen_high)
        F[failed] = penalty
        algorithm = self._algorithm
        if algorithm.is_initialized:
            for individual in algorithm.pop:
                if individual.get("failed"):
                    individual.F = penalty.copy()
        infills = Population.new(X=self._pending.copy(), F=F)
        infills.set("failed", [bool(f) for f in failed])
        algorithm.tell(infills=infills)
        self._pending = None
        self.generation += 1
        self.n_eval += len(F)
        if self._hv_ideal is None and np.any(~failed):
            low, high = F[~failed].min(axis=0), F[~failed].max(axis=0)
            self._hv_ideal = low
            self._hv_scale = np.where(high > low, high - low, 1.0)
        self.hypervolume_history.append(self._hypervolume())

    # ---------------------------------------------------------------- results

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Population genomes, minimization objectives and failure mask."""
        algorithm, m = self._algorithm, len(self.objectives)
        if not algorithm.is_initialized or algorithm.pop is None or len(algorithm.pop) == 0:
            return np.zeros((0, self.space.dim)), np.zeros((0, m)), np.zeros(0, dtype=bool)
        pop = algorithm.pop
        X = np.array(pop.get("X"), dtype=np.float64).reshape(len(pop), -1)
        F = np.array(pop.get("F"), dtype=np.float64).reshape(len(pop), m)
        failed = np.array([bool(ind.get("failed")) for ind in pop], dtype=bool)
        return X, F, failed

    def _as_dict(self, f: np.ndarray, failed: bool) -> dict[str, float]:
        return {
            n: float("nan") if failed else -float(v)
            for n, v in zip(self.objectives, f, strict=True)
        }

    @property
    def population(self) -> list[tuple[Policy, dict[str, float]]]:
        """The current population as ``(policy, objectives)``; NaN objectives for failures."""
        X, F, failed = self._arrays()
        return [
            (self.space.decode(x), self._as_dict(f, bool(b)))
            for x, f, b in zip(X, F, failed, strict=True)
        ]

    def pareto_front(self) -> list[tuple[Policy, dict[str, float]]]:
        """Non-dominated, non-failed members of the current population, in population order."""
        X, F, failed = self._arrays()
        index = np.flatnonzero(~failed)
        if len(index) == 0:
            return []
        front = NonDominatedSorting().do(F[index], only_non_dominated_front=True)
        return [(self.space.decode(X[i]), self._as_dict(F[i], False)) for i in sorted(index[front])]

    def _hypervolume(self) -> float:
        _, F, failed = self._arrays()
        if self._hv_ideal is None or self._hv_scale is None or not np.any(~failed):
            return 0.0
        normalized = (F[~failed] - self._hv_ideal) / self._hv_scale
        indicator = HV(ref_point=np.full(len(self.objectives), HV_REFERENCE))
        return float(indicator(normalized))

    # ---------------------------------------------------------------- state

    def _config(self) -> dict[str, Any]:
        return search_config(
            algorithm=type(self._algorithm).__name__,
            objectives=self.objectives,
            space=self.space,
            population_size=self.population_size,
            n_offsprings=self.n_offsprings,
        )

    def state_dict(self) -> dict[str, Any]:
        """The search state as plain Python values (``json`` and ``weights_only`` safe).

        Configuration, population (with NSGA-II's ranks and crowding distances), pending
        genomes, the generator state and the hypervolume history.
        """
        X, F, failed = self._arrays()
        ranks, crowding = population_labels(self._algorithm)
        return SearchSnapshot(
            config=self._config(), seed=self.seed, generation=self.generation,
            n_eval=self.n_eval, X=X, F=F, failed=[bool(b) for b in failed], rank=ranks,
            crowding=crowding, pending=self._pending,
            rng=self._algorithm.random_state.bit_generator.state,
            seen_low=self._seen_low, seen_high=self._seen_high,
            hypervolume_history=self.hypervolume_history,
            hypervolume_ideal=self._hv_ideal, hypervolume_scale=self._hv_scale,
        ).to_state()  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output; later ask/tell continue exactly.

        Raises:
            ConfigError: The state is malformed or was saved by a search with other
                objectives, genome space, population size, offspring count or algorithm.

        """
        snapshot = SearchSnapshot.from_state(
            state, config=self._config(), dim=self.space.dim, n_objectives=len(self.objectives)
        )  # validates everything before anything changes
        restore_algorithm(self._algorithm, snapshot)
        self.seed = snapshot.seed  # the generator's state carries on from the saved seed
        self.generation, self.n_eval = snapshot.generation, snapshot.n_eval
        self._pending = snapshot.pending
        self._seen_low, self._seen_high = snapshot.seen_low, snapshot.seen_high
        self.hypervolume_history = list(snapshot.hypervolume_history)
        self._hv_ideal = snapshot.hypervolume_ideal
        self._hv_scale = snapshot.hypervolume_scale

    def checksum(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`state_dict` (equal states, equal sums)."""
        return sha256(self.state_dict())
