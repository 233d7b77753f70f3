import json
import subprocess
import sys
from pathlib import Path

import pytest

from evoaug import search

SCRIPT = Path(__file__).parent / "scripts" / "ddp_fit.py"


@pytest.mark.slow
def test_two_process_ddp_evaluates_each_candidate_once(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["generation"] == ranks[1]["generation"] == 2
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # identical search state
    assert ranks[0]["best"] == ranks[1]["best"]
    records, warnings = search.read_history(tmp_path / "evoaug" / "history.jsonl")
    assert warnings == []
    for generation in (0, 1):
        rows = [r for r in records if r["generation"] == generation]
        assert sorted(r["index"] for r in rows) == list(range(len(rows)))  # each once
        assert {r["rank"] for r in rows} == {0, 1}  # sharded over both ranks
        assert all(r["rank"] == r["index"] % 2 for r in rows)


@pytest.mark.slow
def test_under_ddp_rank_zero_decides_how_many_generations_the_budget_pays(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "budget"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Rank 1's clock says its first generation spent the budget a million times over; it
    # still ran what rank 0's clock paid for, so the ranks stayed in step.
    assert ranks[0]["generation"] == ranks[1]["generation"] >= 2
    assert ranks[0]["measured_generations"] == ranks[1]["measured_generations"]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]
