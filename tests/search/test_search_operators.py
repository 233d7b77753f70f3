import numpy as np
import pytest
from pymoo.core.population import Population

from evoaug import ConfigError, GenomeSpace
from evoaug.search import GeneMutation, PolicyDuplicateElimination, SubPolicyCrossover
from evoaug.search._algorithm import GenomeProblem

OPS = ["Identity", "Invert", "Rotate", "Solarize", "Posterize"]


def _space(k: int = 4, length: int = 2) -> GenomeSpace:
    return GenomeSpace(ops=OPS, n_subpolicies=k, n_genes=length)


def _cross(space: GenomeSpace, X: np.ndarray, seed: int, prob: float = 1.0) -> np.ndarray:
    pop = Population.new(X=X)
    parents = np.arange(len(X)).reshape(-1, 2)
    off = SubPolicyCrossover(space, prob=prob).do(
        GenomeProblem(space.dim, 2), pop, parents, random_state=np.random.default_rng(seed)
    )
    return np.asarray(off.get("X"))


def _mutate(space: GenomeSpace, X: np.ndarray, seed: int, **kwargs: float) -> np.ndarray:
    out = GeneMutation(space, **kwargs).do(
        GenomeProblem(space.dim, 2),
        Population.new(X=X.copy()),
        random_state=np.random.default_rng(seed),
    )
    return np.asarray(out.get("X"))


def test_crossover_children_are_made_of_whole_parent_subpolicies() -> None:
    space = _space()
    X = space.random(np.random.default_rng(0), 20)
    children = _cross(space, X, seed=1)
    assert children.shape == X.shape
    assert np.all((children >= 0) & (children <= 1))
    swapped = 0
    for m in range(10):
        p0, p1 = X[2 * m], X[2 * m + 1]
        c0, c1 = children[m], children[10 + m]  # pymoo lays out offspring child-major
        for k in range(space.n_subpolicies):
            sl = space.subpolicy_slice(k)
            from_first = np.array_equal(c0[sl], p0[sl]) and np.array_equal(c1[sl], p1[sl])
            from_second = np.array_equal(c0[sl], p1[sl]) and np.array_equal(c1[sl], p0[sl])
            assert from_first or from_second
            swapped += from_second
    assert 0 < swapped < 10 * space.n_subpolicies  # both parents contribute


def test_crossover_is_reproducible_for_a_seed() -> None:
    space = _space()
    X = space.random(np.random.default_rng(0), 8)
    assert np.array_equal(_cross(space, X, 5), _cross(space, X, 5))
    assert not np.array_equal(_cross(space, X, 5), _cross(space, X, 6))


def test_crossover_with_probability_zero_copies_parents() -> None:
    space = _space()
    X = space.random(np.random.default_rng(0), 4)
    children = _cross(space, X, 0, prob=0.0)
    assert {tuple(c) for c in children} == {tuple(x) for x in X}


def test_mutation_changes_some_ops_keeps_others_and_stays_in_the_cube() -> None:
    space = _space()
    X = space.random(np.random.default_rng(0), 200)
    Y = _mutate(space, X, seed=3)
    assert np.all((Y >= 0) & (Y <= 1))
    ops_before = np.minimum((X[:, 0::3] * len(OPS)).astype(int), len(OPS) - 1)
    ops_after = np.minimum((Y[:, 0::3] * len(OPS)).astype(int), len(OPS) - 1)
    changed = ops_before != ops_after
    # default op_prob = 1 / (K * L) = 1/8 per gene
    assert 0.08 < changed.mean() < 0.17
    centres = (ops_after[changed] + 0.5) / len(OPS)
    assert np.allclose(Y[:, 0::3][changed], centres)
    assert np.array_equal(Y[:, 0::3][~changed], X[:, 0::3][~changed])
    for col in (1, 2):  # probability, level: perturbed at rate 1/8, else untouched
        moved = Y[:, col::3] != X[:, col::3]
        assert 0.08 < moved.mean() < 0.17


def test_mutation_rates_and_reproducibility() -> None:
    space = _space()
    X = space.random(np.random.default_rng(1), 50)
    assert np.array_equal(_mutate(space, X, 7), _mutate(space, X, 7))
    assert not np.array_equal(_mutate(space, X, 7), _mutate(space, X, 8))
    assert np.array_equal(_mutate(space, X, 7, op_prob=0.0, value_prob=0.0), X)
    Y = _mutate(space, X, 7, op_prob=1.0, value_prob=0.0)
    assert np.all(Y[:, 0::3] != X[:, 0::3])
    assert np.array_equal(Y[:, 1::3], X[:, 1::3])


def test_mutation_with_one_op_never_changes_the_op() -> None:
    space = GenomeSpace(ops=["Rotate"], n_subpolicies=2, n_genes=1)
    X = space.random(np.random.default_rng(0), 10)
    Y = _mutate(space, X, 0, op_prob=1.0)
    assert np.array_equal(Y[:, 0::3], X[:, 0::3])


def test_duplicate_elimination_compares_decoded_policies() -> None:
    space = _space(k=1, length=1)
    a = np.array([0.05, 0.5, 0.5])
    same_policy = np.array([0.15, 0.5 + 1e-8, 0.5])  # same op bin, probability within 1e-6
    other_op = np.array([0.25, 0.5, 0.5])
    other_level = np.array([0.05, 0.5, 0.6])
    elim = PolicyDuplicateElimination(space)
    pop = Population.new(X=np.stack([a, same_policy, other_op, other_level, a]))
    kept = np.asarray(elim.do(pop).get("X"))
    assert np.array_equal(kept, np.stack([a, other_op, other_level]))
    offspring = Population.new(X=np.stack([same_policy, np.array([0.9, 0.1, 0.1])]))
    fresh = np.asarray(elim.do(offspring, Population.new(X=a[None])).get("X"))
    assert np.array_equal(fresh, np.array([[0.9, 0.1, 0.1]]))
    assert elim.is_equal(pop[0], pop[1]) and not elim.is_equal(pop[0], pop[2])
    assert space.decode(a) == space.decode(np.array([0.15, 0.5, 0.5]))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda s: SubPolicyCrossover(s, prob=1.5),
            r"`prob` must be a number in \[0, 1\], got 1.5",
        ),
        (
            lambda s: GeneMutation(s, op_prob=-0.1),
            r"`op_prob` must be a number in \[0, 1\], got -0.1",
        ),
        (lambda s: GeneMutation(s, sigma=0), "`sigma` must be a positive number, got 0"),
        (lambda s: GeneMutation(s, value_prob=True), "`value_prob` must be a number"),
        (lambda s: PolicyDuplicateElimination(s, atol=-1), "`atol` must be a non-negative number"),
        (lambda s: GeneMutation("space"), "`space` must be an evoaug.GenomeSpace, got str"),
    ],
)
def test_bad_operator_arguments(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        build(_space())


def test_operators_refuse_a_non_generator_random_state() -> None:
    space = _space()
    with pytest.raises(ConfigError, match="`random_state` must be a numpy.random.Generator"):
        GeneMutation(space)._do(None, space.random(np.random.default_rng(0), 2), random_state=0)
