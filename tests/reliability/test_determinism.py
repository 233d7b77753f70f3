"""Same seed, same machine, CPU: two fits write identical run files.

``history.jsonl`` is compared line by line without its one timing field, ``seconds`` (the wall
time of each evaluation; documented in docs/reliability.md); everything else must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TIMING_FIELDS = {"seconds"}


def _history(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS} for line in lines]


def test_two_seeded_fits_write_identical_histories(tmp_path: Path, digits_fit) -> None:  # type: ignore[no-untyped-def]
    first = digits_fit.fit(tmp_path / "a", max_epochs=3, checkpoint=False)
    second = digits_fit.fit(tmp_path / "b", max_epochs=3, checkpoint=False)
    a, b = tmp_path / "a" / "evoaug", tmp_path / "b" / "evoaug"
    history = _history(a)
    assert len(history) == 8 and {r["generation"] for r in history} == {0, 1}
    assert set(json.loads((a / "history.jsonl").read_text().splitlines()[0])) - TIMING_FIELDS == {
        "generation", "epoch", "rank", "index", "policy", "genome", "objectives", "failure",
        "pareto_rank",
    }  # fmt: skip
    assert history == _history(b)
    for name in ("timeline.jsonl", "best_policy.yaml", "pareto.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert first.search is not None and second.search is not None
    assert first.search.checksum() == second.search.checksum()
