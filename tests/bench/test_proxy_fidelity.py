"""bench/proxy_fidelity.py end to end on a tiny setting: both outcomes, the cache, the page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "proxy_fidelity.py"
TINY = ("--seeds", "0", "--epochs", "2", "--checkpoint-epoch", "1", "--lookahead-steps", "2")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_both_outcomes_write_their_section_and_share_the_cache(tmp_path: Path) -> None:
    page, cache = tmp_path / "benchmarks.md", tmp_path / "tests.json"
    page.write_text("# B\n<!-- BEGIN pf -->\nold\n<!-- END pf -->\nkeep me\n", encoding="utf-8")
    common = ("--tests-cache", str(cache), "--write-docs", "--docs", str(page), "--section", "pf")
    resumed = _run("--outcome", "continue", "--fairness-metric", "worst_group_gain", *common)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    text = page.read_text(encoding="utf-8")
    assert "old" not in text and text.endswith("<!-- END pf -->\nkeep me\n")
    assert "| policy | look-ahead accuracy | look-ahead worst group gain |" in text
    assert text.count("\n| ") == 2 + 8  # header, rule and the eight policies
    assert "test results after continuing from that checkpoint" in text
    results = json.loads(cache.read_text())
    assert len(results) == 8 and all(key.endswith(" from-epoch=1") for key in results)

    scratch = _run("--outcome", "scratch", *common)
    assert scratch.returncode == 0, scratch.stderr[-3000:]
    assert "look-ahead worst group accuracy" in page.read_text(encoding="utf-8")
    results = json.loads(cache.read_text())
    assert len(results) == 16
    # Identity resumed at epoch 1 trains exactly as identity from scratch does: the checkpoint
    # was taken on the same deterministic run, and resuming restores its whole state.
    key = "seed=0 epochs=2 lr=0.05 policy=identity"
    assert results[key] == results[key + " from-epoch=1"]
    assert results[key]["accuracy"] > 0.2  # it learned something in two epochs


def test_bad_flags_are_refused_before_any_training() -> None:
    bad = _run("--fairness-metric", "gini")
    assert bad.returncode == 2
    assert "invalid choice: 'gini'" in bad.stderr


def test_seed_agreement_is_the_median_rho_over_pairs_of_seeds(
    bench_module: Callable[[str], ModuleType],
) -> None:
    module = bench_module("proxy_fidelity")
    # Three policies, three seeds: seeds 0 and 1 agree (rho 1), seed 2 reverses them (-1, -1).
    values = [[1.0, 10.0, 3.0], [2.0, 20.0, 2.0], [3.0, 30.0, 1.0]]
    assert module.seed_agreement(values) == pytest.approx(-1.0)
    # Seed 2 swaps the last two policies: one pair agrees (rho 1), two pairs give rho 0.5.
    values = [[1.0, 1.0, 1.0], [2.0, 2.0, 3.0], [3.0, 3.0, 2.0]]
    assert module.seed_agreement(values) == pytest.approx(0.5)
    assert module.seed_agreement([[1.0], [2.0]]) is None
