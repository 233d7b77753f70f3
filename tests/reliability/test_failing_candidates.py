"""A custom op that raises and one that returns NaN, searched in a real fit: their candidates are
scored worst with the reason in history.jsonl, and training goes on to the last epoch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

import evoaug
from evoaug.search import read_history

RAISES, NAN = "TestRaises", "TestReturnsNaN"


@pytest.fixture
def failing_ops() -> Iterator[None]:
    @evoaug.register_op(RAISES, low=0.0, high=1.0)
    def raises(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("kernel exploded on purpose")

    @evoaug.register_op(NAN, low=0.0, high=1.0)
    def returns_nan(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return torch.full_like(images, float("nan"))

    try:
        yield
    finally:
        evoaug.ops.unregister_op(RAISES)
        evoaug.ops.unregister_op(NAN)


def test_failing_candidates_are_scored_worst_and_training_goes_on(
    tmp_path: Path, digits_fit, failing_ops
) -> None:  # type: ignore[no-untyped-def]
    cb = digits_fit.callback(ops=("Identity", "Invert", RAISES, NAN), population_size=6)
    digits_fit.fit(tmp_path, max_epochs=3, checkpoint=False, cb=cb)
    assert cb._trainer is not None and cb._trainer.current_epoch == 3  # fit completed
    assert cb.generation == 2  # no generation was lost to the failures

    records, warnings = read_history(tmp_path / "evoaug" / "history.jsonl")
    assert warnings == [] and len(records) == 12
    raised = [r for r in records if r["failure"] and "kernel exploded on purpose" in r["failure"]]
    nan = [r for r in records if r["failure"] and "non-finite" in r["failure"]]
    assert raised and nan, [r["failure"] for r in records]
    for record in raised:
        assert RAISES in {g["op"] for sub in record["policy"]["sub_policies"] for g in sub}
    for record in nan:
        assert NAN in {g["op"] for sub in record["policy"]["sub_policies"] for g in sub}
    for record in raised + nan:  # worst on every objective: no value, and never chosen
        assert set(record["objectives"].values()) == {None}
    succeeded = [r for r in records if r["failure"] is None]
    assert succeeded and all(
        all(v is not None for v in r["objectives"].values()) for r in succeeded
    )

    # In the search, a failure's minimization values are worse than every scored candidate's.
    assert cb.search is not None
    _, F, failed = cb.search._arrays()
    assert failed.any() and (~failed).any()
    assert np.all(F[failed].min(axis=0) > F[~failed].max(axis=0))
    front = cb.pareto_front
    assert front and all(np.isfinite(list(o.values())).all() for _, o in front)
    assert cb.best_policy.name is not None and cb.best_policy.name.startswith("evoaug generation")
