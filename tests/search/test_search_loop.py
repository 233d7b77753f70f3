import math

import numpy as np
import pytest

from evoaug import GenomeSpace, Policy
from evoaug.search import Candidate, Search

OPS = ["Identity", "Invert", "Rotate", "Solarize", "Posterize", "Contrast"]
OBJECTIVES = ("strength", "simplicity")


def _space() -> GenomeSpace:
    return GenomeSpace(ops=OPS, n_subpolicies=3, n_genes=2)


def _score(candidate: Candidate) -> dict[str, float]:
    """Cheap synthetic objectives of the decoded policy: strong levels vs few distinct ops."""
    genes = [g for sub in candidate.policy for g in sub]
    return {
        "strength": float(np.mean([g.level * g.probability for g in genes])),
        "simplicity": -float(len(candidate.policy.ops)) + 0.1 * genes[0].probability,
    }


def _run(search: Search, generations: int, fail_every: int = 0) -> list[np.ndarray]:
    asked = []
    for _ in range(generations):
        candidates = search.ask()
        asked.append(np.stack([c.genome for c in candidates]))
        results = [
            None if fail_every and c.index % fail_every == 0 else _score(c) for c in candidates
        ]
        search.tell(results)
    return asked


def _population_genomes(search: Search) -> np.ndarray:
    return np.asarray(search.state_dict()["population"]["X"])


def test_same_seed_same_populations_and_asked_genomes() -> None:
    a, b = (
        Search(_space(), OBJECTIVES, population_size=8, seed=4),
        Search(_space(), OBJECTIVES, population_size=8, seed=4),
    )
    for _ in range(6):
        ca, cb = a.ask(), b.ask()
        assert np.array_equal(np.stack([c.genome for c in ca]), np.stack([c.genome for c in cb]))
        a.tell([_score(c) for c in ca])
        b.tell([_score(c) for c in cb])
        assert np.array_equal(_population_genomes(a), _population_genomes(b))
        assert a.checksum() == b.checksum()
    other = Search(_space(), OBJECTIVES, population_size=8, seed=5)
    assert not np.array_equal(
        _run(other, 1)[0], _run(Search(_space(), OBJECTIVES, population_size=8, seed=4), 1)[0]
    )


def test_first_population_is_presets_then_random_and_duplicates_are_dropped() -> None:
    identity = Policy.preset("identity")
    custom = Policy.from_genes([[("Invert", 0.5, 0.0)], [("Rotate", 1.0, 0.3)]])
    search = Search(
        _space(), OBJECTIVES, population_size=6, initial_policies=[identity, custom, identity]
    )
    candidates = search.ask()
    assert len(candidates) == 6
    assert [c.index for c in candidates] == list(range(6))
    assert candidates[0].policy.ops == ("Identity",)
    assert candidates[1].policy.sub_policies[0].ops == ("Invert", "Identity")
    assert candidates[2].policy.ops != ("Identity",)  # the repeated preset was dropped
    assert search.ask()[3].genome.tobytes() == candidates[3].genome.tobytes()  # ask is idempotent
    with pytest.raises(ValueError, match="read-only"):
        candidates[0].genome[0] = 0.5


def test_generations_offspring_counts_and_results_views() -> None:
    search = Search(_space(), OBJECTIVES, population_size=5, n_offsprings=3, seed=1)
    assert search.population == [] and search.pareto_front() == []
    _run(search, 4)
    assert search.generation == 4
    assert search.n_eval == 5 + 3 * 3
    assert len(search.population) == 5
    front = search.pareto_front()
    assert front and all(isinstance(p, Policy) for p, _ in front)
    assert all(set(o) == set(OBJECTIVES) for _, o in front)
    # non-dominated among the population
    pop = [o for _, o in search.population]
    for _, f in front:
        assert not any(
            all(q[k] >= f[k] for k in OBJECTIVES)
            and q != f
            and any(q[k] > f[k] for k in OBJECTIVES)
            for q in pop
        )


def test_extra_result_keys_are_ignored() -> None:
    search = Search(_space(), OBJECTIVES, population_size=4)
    search.tell([{**_score(c), "loss": 1.0} for c in search.ask()])
    assert search.generation == 1


def test_failed_candidates_score_worst_and_the_search_goes_on() -> None:
    search = Search(_space(), OBJECTIVES, population_size=8, seed=2)
    candidates = search.ask()
    results: list[dict[str, float] | None] = [_score(c) for c in candidates]
    results[0] = None
    results[1] = {"strength": math.nan, "simplicity": 1.0}
    results[2] = {"strength": 0.5, "simplicity": -math.inf}
    search.tell(results)
    state = search.state_dict()
    F = np.asarray(state["population"]["F"])
    failed = np.asarray(state["population"]["failed"])
    assert failed.sum() == 3
    assert np.all(F[failed] > F[~failed].max(axis=0))  # minimization form: worse than all finite
    assert sum(math.isnan(o["strength"]) for _, o in search.population) == 3
    assert all(math.isfinite(o["strength"]) for _, o in search.pareto_front())
    _run(search, 5, fail_every=3)
    state = search.state_dict()
    F = np.asarray(state["population"]["F"])
    failed = np.asarray(state["population"]["failed"])
    if failed.any():
        assert np.all(F[failed] > F[~failed].max(axis=0))
    assert search.generation == 6 and len(search.hypervolume_history) == 6


def test_all_failed_first_generation_then_recovery() -> None:
    search = Search(_space(), OBJECTIVES, population_size=4)
    search.tell([None] * len(search.ask()))
    assert search.pareto_front() == [] and search.hypervolume_history == [0.0]
    _run(search, 3)
    assert search.pareto_front() and search.hypervolume_history[-1] > 0


def test_hypervolume_grows_on_a_stationary_problem() -> None:
    search = Search(_space(), OBJECTIVES, population_size=8, seed=0)
    _run(search, 15)
    history = search.hypervolume_history
    assert len(history) == 15 and all(h >= 0 for h in history)
    assert history[-1] > history[0]
