"""The surrogate: fits, predicts, ranks, logs its error; screened generations are better."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evoaug import ConfigError, GenomeSpace, Policy
from evoaug.offline import (
    OfflineSearch,
    ScreenedMating,
    SerialRunner,
    Surrogate,
    SyntheticObjectives,
    op_usage,
    prediction_error,
)
from evoaug.search import build_nsga2, read_history

OBJECTIVES = ("accuracy", "diversity")


def _data(space: GenomeSpace, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    lower = SyntheticObjectives(OBJECTIVES, noise=0.0)
    X = space.random(np.random.default_rng(seed), n)
    Y = np.array([list(lower.clean(space.decode(x)).values()) for x in X])
    return X, Y


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.mark.parametrize("kind", ["rf", "gp"])
def test_fits_and_predicts_held_out_policies(kind: str, small_space: GenomeSpace) -> None:
    X, Y = _data(small_space, 120, seed=0)
    model = Surrogate(small_space, OBJECTIVES, kind=kind, seed=0).fit(X[:80], Y[:80])
    mean, std = model.predict(X[80:])
    assert mean.shape == std.shape == (40, 2) and np.all(std >= 0)
    for j in range(2):
        assert _spearman(mean[:, j], Y[80:, j]) > 0.5, (kind, j)  # random: about 0


def test_equivalent_genomes_get_equal_predictions(small_space: GenomeSpace) -> None:
    X, Y = _data(small_space, 40, seed=1)
    model = Surrogate(small_space, OBJECTIVES, n_estimators=10).fit(X, Y)
    swapped = np.concatenate([X[0, 3:], X[0, :3]])  # the two sub-policies exchanged
    a, _ = model.predict(X[:1])
    b, _ = model.predict(swapped[None])
    assert np.array_equal(a, b)


def test_rank_takes_front_by_front(small_space: GenomeSpace) -> None:
    X, Y = _data(small_space, 60, seed=2)
    model = Surrogate(small_space, ["accuracy"], n_estimators=30).fit(X, Y[:, :1])
    pool, _ = _data(small_space, 20, seed=3)
    chosen = model.rank(pool, 5)
    predicted = model.predict(pool)[0][:, 0]
    assert chosen == list(np.argsort(-predicted, kind="stable")[:5])
    assert Surrogate(small_space, ["accuracy"]).rank(pool, 3) == [0, 1, 2]  # unfitted


def test_failed_rows_are_left_out_and_deterministic(small_space: GenomeSpace) -> None:
    X, Y = _data(small_space, 30, seed=4)
    Y[[3, 7]] = np.nan
    a = Surrogate(small_space, OBJECTIVES, seed=5).fit(X, Y)
    b = Surrogate(small_space, OBJECTIVES, seed=5).fit(X, Y)
    assert a.n_train == 28
    assert np.array_equal(a.predict(X)[0], b.predict(X)[0])
    assert not Surrogate(small_space, OBJECTIVES).fit(X[:1], Y[:1]).fitted


def test_bad_arguments_name_themselves(small_space: GenomeSpace) -> None:
    with pytest.raises(ConfigError, match=r"`kind` must be one of \['rf', 'gp'\], got 'xgb'"):
        Surrogate(small_space, OBJECTIVES, kind="xgb")
    with pytest.raises(ConfigError, match=r"`fit` needs genomes \[n, 6\] and values \[n, 2\]"):
        Surrogate(small_space, OBJECTIVES).fit(np.zeros((4, 6)), np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="not fitted"):
        Surrogate(small_space, OBJECTIVES).predict(np.zeros((1, 6)))


def test_prediction_error_handles_failures_and_constant_columns() -> None:
    predicted = np.array([[0.1, 1.0], [0.2, 1.0], [0.3, 1.0], [0.9, 1.0]])
    actual = np.array([[0.1, 0.5], [0.3, 0.6], [0.2, 0.7], [np.nan, 0.1]])
    error = prediction_error(["a", "b"], predicted, actual)
    assert error["mae"]["a"] == pytest.approx(0.1 / 3 * 2)
    assert error["spearman"]["a"] == pytest.approx(0.5)
    assert error["spearman"]["b"] is None  # constant predictions


def test_op_usage_ignores_order() -> None:
    policy = Policy.preset("autoaugment-cifar10")
    shuffled = Policy(tuple(reversed(policy.sub_policies)))
    a, b = op_usage(policy, policy.ops), op_usage(shuffled, policy.ops)
    assert np.allclose(a[0], b[0]) and np.allclose(a[1], b[1])


def test_screened_mating_breeds_the_pool_and_keeps_the_screened(small_space: GenomeSpace) -> None:
    seen: list[int] = []

    def screen(genomes: np.ndarray, k: int) -> list[int]:
        seen.append(len(genomes))
        return list(range(len(genomes) - k, len(genomes)))

    algorithm = build_nsga2(small_space, population_size=4, n_offsprings=2)
    algorithm.mating = ScreenedMating(algorithm.mating, 8, screen)
    from evoaug import Search

    search = Search(small_space, ["accuracy"], population_size=4, n_offsprings=2,
                    algorithm=algorithm)  # fmt: skip
    search.tell([{"accuracy": float(c.genome[1])} for c in search.ask()])
    assert len(search.ask()) == 2 and seen == [8]


def test_the_search_logs_the_surrogate_error_and_predictions(
    tmp_path: Path, small_space: GenomeSpace
) -> None:
    search = OfflineSearch(
        SyntheticObjectives(OBJECTIVES),
        out=tmp_path,
        generations=3,
        population_size=8,
        space=small_space,
        surrogate="rf",
        pool_factor=3,
        keep_fraction=0.5,
    )
    assert (search.pool_size, search.n_offsprings) == (24, 12)
    search.run(SerialRunner())
    text = (tmp_path / "evoaug" / "surrogate.jsonl").read_text()
    lines = [json.loads(x) for x in text.splitlines()]
    assert [x["generation"] for x in lines] == [1, 2]
    assert [x["n_train"] for x in lines] == [8, 20] and lines[0]["pool"] == 24
    assert set(lines[0]["mae"]) == set(OBJECTIVES) and lines[0]["kept"] == 12
    records, _ = read_history(tmp_path / "evoaug" / "history.jsonl")
    assert len(records) == 8 + 12 + 12
    assert all((r["predicted"] is None) == (r["generation"] == 0) for r in records)
