"""NSGA-II for policy genomes: the pymoo algorithm, the problem stub and the candidate record.

:func:`population_labels` and :func:`restore_algorithm` are where a saved
:class:`~evoaug.search.Search` state meets the pymoo algorithm's attributes (checked against
pymoo 0.6.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.population import Population
from pymoo.core.problem import Problem

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError
from evoaug.genome import GenomeSpace
from evoaug.policy import Policy
from evoaug.search._operators import GeneMutation, PolicyDuplicateElimination, SubPolicyCrossover
from evoaug.search._state import SearchSnapshot

__all__ = [
    "MIN_POPULATION_SIZE",
    "Candidate",
    "GenomeProblem",
    "build_nsga2",
    "population_labels",
    "restore_algorithm",
]

MIN_POPULATION_SIZE = 4  # binary tournaments and crowding need a few individuals


class GenomeProblem(Problem):  # type: ignore[misc]
    """The pymoo problem of a search: ``space.dim`` variables in ``[0, 1]``, ``n_obj`` objectives.

    It only describes the search space. Candidates are scored outside pymoo (on the live model,
    possibly sharded across ranks) and handed back through ask/tell, so :meth:`_evaluate` is
    never called.
    """

    def __init__(self, n_var: int, n_obj: int) -> None:
        super().__init__(n_var=n_var, n_obj=n_obj, xl=0.0, xu=1.0, vtype=float)

    def _evaluate(self, x: Any, out: Any, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("evoaug scores candidates through Search.ask() / Search.tell()")


def build_nsga2(
    space: GenomeSpace,
    *,
    population_size: int = 16,
    n_offsprings: int | None = None,
    crossover: Any = None,
    mutation: Any = None,
    sampling: Any = None,
    eliminate_duplicates: Any = None,
) -> NSGA2:
    """NSGA-II (Deb et al., IEEE TEC 2002) with operators that respect the genome's structure.

    Args:
        space: The genome space searched.
        population_size: Individuals kept from one generation to the next (at least 4).
        n_offsprings: Children per generation; ``None`` means ``population_size``.
        crossover: A pymoo crossover; ``None`` creates a :class:`SubPolicyCrossover`.
        mutation: A pymoo mutation; ``None`` creates a :class:`GeneMutation`.
        sampling: A pymoo sampling or an ``[n, d]`` array for the first population; ``None``
            samples uniformly (a :class:`Search` replaces it with presets plus random genomes).
        eliminate_duplicates: A pymoo duplicate elimination; ``None`` creates a
            :class:`PolicyDuplicateElimination`.

    Returns:
        A fresh ``pymoo`` ``NSGA2`` (not set up: call ``setup(problem, seed=...)`` or hand it to
        :class:`Search`).

    Raises:
        ConfigError: ``population_size`` below 4 or ``n_offsprings`` below 1.

    Example:
        >>> from evoaug import GenomeSpace
        >>> algorithm = build_nsga2(GenomeSpace(n_subpolicies=2), population_size=8)
        >>> algorithm.pop_size, type(algorithm.mating.crossover).__name__
        (8, 'SubPolicyCrossover')

    """
    from pymoo.operators.sampling.rnd import FloatRandomSampling

    if not isinstance(space, GenomeSpace):
        raise ConfigError(f"`space` must be an evoaug.GenomeSpace, got {type(space).__name__}")
    population_size = check_int("population_size", population_size, low=MIN_POPULATION_SIZE)
    if n_offsprings is not None:
        n_offsprings = check_int("n_offsprings", n_offsprings, low=1)
    return NSGA2(
        pop_size=population_size,
        n_offsprings=n_offsprings,
        sampling=FloatRandomSampling() if sampling is None else sampling,
        crossover=SubPolicyCrossover(space) if crossover is None else crossover,
        mutation=GeneMutation(space) if mutation is None else mutation,
        eliminate_duplicates=(
            PolicyDuplicateElimination(space)
            if eliminate_duplicates is None
            else eliminate_duplicates
        ),
    )


@dataclass(frozen=True, eq=False)
class Candidate:
    """One policy to score, as :meth:`Search.ask` hands it out.

    Attributes:
        index: Position in the batch returned by ``ask``; ``tell`` expects results in this order.
        genome: The genome (read-only ``float64`` array of length ``space.dim``).
        policy: The decoded policy.

    Example:
        >>> import numpy as np
        >>> from evoaug import GenomeSpace
        >>> space = GenomeSpace(n_subpolicies=1, n_genes=1)
        >>> x = np.array([0.0, 0.5, 0.25])
        >>> candidate = Candidate(0, x, space.decode(x))
        >>> candidate.policy.sub_policies[0].genes[0].level
        0.25

    """

    index: int
    genome: np.ndarray
    policy: Policy


def population_labels(algorithm: Any) -> tuple[list[int | None], list[float | None]]:
    """NSGA-II's rank and crowding distance of each individual (``None`` where pymoo set none).

    Both lists are empty while the algorithm has no population (before the first ``tell``).
    """
    pop = algorithm.pop
    if not algorithm.is_initialized or pop is None or len(pop) == 0:
        return [], []
    ranks, crowding = [ind.get("rank") for ind in pop], [ind.get("crowding") for ind in pop]
    return (
        [None if r is None else int(r) for r in ranks],
        [None if c is None else float(c) for c in crowding],
    )


def restore_algorithm(algorithm: Any, snapshot: SearchSnapshot) -> None:
    """Put a set-up pymoo algorithm back where it was when ``snapshot`` was taken.

    Sets the generator state, the population with its failure flags, ranks and crowding
    distances, and the generation counter, so that the next ``ask`` draws what it would have
    drawn. At generation 0 the algorithm is left uninitialized; if candidates were pending, the
    bookkeeping of the first ``ask`` is redone, since the next ``tell`` expects it.
    """
    algorithm.random_state.bit_generator.state = dict(snapshot.rng)
    if snapshot.generation > 0:
        population = Population.new(X=snapshot.X, F=snapshot.F)
        labels = zip(population, snapshot.failed, snapshot.rank, snapshot.crowding, strict=True)
        for individual, failed, rank, crowding in labels:
            individual.set("failed", failed)
            if rank is not None:
                individual.set("rank", rank)
            if crowding is not None:
                individual.set("crowding", crowding)
        algorithm.pop = population
        algorithm.is_initialized = True
        algorithm.n_gen = snapshot.generation + 1  # pymoo's public alias of `n_iter`
    else:
        algorithm.is_initialized = False
        if snapshot.pending is not None:
            algorithm._initialize()  # no public API: what the first `ask` did before the save
    algorithm.termination.force_termination = False  # `Termination` has no public reset
