import math

import numpy as np
import pytest
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.pso import PSO

from evoaug import ConfigError, GenomeSpace, Policy
from evoaug.search import Search, build_nsga2

SPACE = GenomeSpace(ops=["Identity", "Invert", "Rotate"], n_subpolicies=2, n_genes=1)
OBJ = ("accuracy", "fairness")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"population_size": 3}, "`population_size` must be an int >= 4, got 3"),
        ({"population_size": 8.0}, "`population_size` must be an int >= 4, got 8.0"),
        ({"population_size": True}, "`population_size` must be an int >= 4, got True"),
        ({"seed": -1}, "`seed` must be an int >= 0, got -1"),
        ({"n_offsprings": 0}, "`n_offsprings` must be an int >= 1, got 0"),
        (
            {"objectives": "accuracy"},
            "`objectives` must be a sequence of objective names, got 'accuracy'",
        ),
        ({"objectives": []}, r"`objectives` must hold at least one non-empty name, got \(\)"),
        ({"objectives": ["a", "a"]}, r"`objectives` must not repeat names, got \['a', 'a'\]"),
        ({"space": "space"}, "`space` must be an evoaug.GenomeSpace, got str"),
        (
            {"initial_policies": Policy.preset("identity")},
            "`initial_policies` must be a sequence of evoaug.Policy",
        ),
        (
            {"initial_policies": ["identity"]},
            r"`initial_policies\[0\]` must be an evoaug.Policy, got str",
        ),
        (
            {"initial_policies": [Policy.preset("identity")] * 5},
            "`initial_policies` holds 5 policies, more than `population_size`=4",
        ),
        (
            {"initial_policies": [Policy.preset("autoaugment-cifar10")]},
            r"`initial_policies\[0\]` does not fit `space`: policy uses ops \[",
        ),
        (
            {"algorithm": "nsga2"},
            "`algorithm` must be a pymoo GeneticAlgorithm such as NSGA2, got str",
        ),
        (
            {"algorithm": NSGA2(pop_size=10)},
            "`population_size`=4 does not match the `algorithm`'s pop_size=10",
        ),
        (
            {"algorithm": NSGA2(pop_size=4), "n_offsprings": 2},
            "`n_offsprings`=2 does not match the `algorithm`'s n_offsprings=4",
        ),
    ],
)
def test_bad_search_arguments(kwargs: dict, message: str) -> None:
    args = {"space": SPACE, "objectives": OBJ, "population_size": 4, **kwargs}
    with pytest.raises(ConfigError, match=message):
        Search(args.pop("space"), args.pop("objectives"), **args)


def test_a_non_genetic_algorithm_is_refused() -> None:
    with pytest.raises(ConfigError, match="got PSO"):
        Search(SPACE, OBJ, population_size=4, algorithm=PSO())


def test_bad_build_nsga2_arguments() -> None:
    with pytest.raises(ConfigError, match="`population_size` must be an int >= 4, got 2"):
        build_nsga2(SPACE, population_size=2)
    with pytest.raises(ConfigError, match="`n_offsprings` must be an int >= 1, got -3"):
        build_nsga2(SPACE, n_offsprings=-3)
    with pytest.raises(ConfigError, match="`space` must be an evoaug.GenomeSpace, got NoneType"):
        build_nsga2(None)  # type: ignore[arg-type]


def test_build_nsga2_creates_fresh_components() -> None:
    a, b = build_nsga2(SPACE), build_nsga2(SPACE)
    assert a.mating.crossover is not b.mating.crossover
    assert a.mating.mutation is not b.mating.mutation


@pytest.mark.parametrize(
    ("results", "message"),
    [
        (
            {"accuracy": 1.0},
            "`results` must be a sequence with one mapping of objective values .* got dict",
        ),
        (
            [{"accuracy": 1.0, "fairness": 1.0}],
            "`results` must hold one entry per asked candidate: expected 4, got 1",
        ),
        (
            [3, None, None, None],
            r"`results\[0\]` must be a mapping of objective values or None, got int",
        ),
        (
            [{"accuracy": 1.0}, None, None, None],
            r"`results\[0\]` is missing objectives \['fairness'\]; expected \['accuracy', "
            r"'fairness'\], got \['accuracy'\]",
        ),
        (
            [{"accuracy": "1", "fairness": 0.0}, None, None, None],
            r"`results\[0\]\['accuracy'\]` must be a real number, got '1'",
        ),
        (
            [{"accuracy": True, "fairness": 0.0}, None, None, None],
            r"`results\[0\]\['accuracy'\]` must be a real number, got True",
        ),
    ],
)
def test_bad_tell(results: object, message: str) -> None:
    search = Search(SPACE, OBJ, population_size=4)
    search.ask()
    with pytest.raises(ConfigError, match=message):
        search.tell(results)  # type: ignore[arg-type]
    # a rejected tell changes nothing: a good one still works
    search.tell([{"accuracy": np.float32(0.5), "fairness": math.nan}, None, None, None])
    assert search.generation == 1


def test_tell_without_ask() -> None:
    search = Search(SPACE, OBJ, population_size=4)
    with pytest.raises(ConfigError, match=r"`tell` needs a pending `ask`: call `ask\(\)`"):
        search.tell([])
    search.tell([None] * len(search.ask()))
    with pytest.raises(ConfigError, match="`tell` needs a pending `ask`"):
        search.tell([None] * 4)
