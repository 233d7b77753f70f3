"""bench/quality.py: the --quick run on digits end to end, resuming, and the goal verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "quality.py"
ARMS = ("none", "randaugment", "trivialaugment", "autoaugment", "evoaug")


@pytest.fixture(scope="module")
def quality(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("quality")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=420, check=False,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_fits_every_arm_writes_its_section_and_resumes(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(
        "# B\n<!-- BEGIN quality -->\nold\n<!-- END quality -->\nkeep me\n", encoding="utf-8"
    )
    results = tmp_path / "quality.jsonl"
    args = ("--quick", "--results", str(results), "--write-docs", "--docs", str(page))
    first = _run(*args)
    assert first.returncode == 0, first.stderr[-3000:]

    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["arm"] for r in records) == sorted(ARMS)
    assert {(r["dataset"], r["seed"]) for r in records} == {("digits", 0)}
    for r in records:
        assert 0.0 <= r["worst_group_acc"] <= r["test_acc"] <= 1.0
        assert r["fit_seconds"] > 0 and r["cpu_seconds"] > 0
        assert (r["search_seconds"] > 0) == r["arm"].startswith("evoaug")
        assert (r["generations"] >= 1) == r["arm"].startswith("evoaug")  # the budget pays

    text = page.read_text(encoding="utf-8")
    assert text.endswith("<!-- END quality -->\nkeep me\n") and "\nold\n" not in text
    rows = [line for line in text.splitlines() if line.startswith("| digits |")]
    assert [row.split(" | ")[1] for row in rows] == list(ARMS)
    assert "digits: do no harm, evoaug mean test accuracy" in text
    assert "digits: do no harm, evoaug's worst seed (0) worst-group accuracy" in text

    # A second run finds every fit in the results file: no training, the same table.
    second = _run(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "seed 0: test acc" not in second.stdout
    assert len(results.read_text().splitlines()) == len(ARMS)
    assert [line for line in page.read_text().splitlines() if line.startswith("| digits |")] == (
        rows
    )


def _result(
    quality: ModuleType,
    arm: str,
    seed: int,
    acc: float,
    worst: float,
    s: float,
    dataset: str = "colored-digits",
) -> object:
    return quality.Result(
        dataset=dataset, arm=arm, seed=seed, test_acc=acc, worst_group_acc=worst,
        acc_gap=acc - worst, fit_seconds=s, generations=3 if arm == "evoaug" else 0, policy=arm,
    )  # fmt: skip


def test_summary_states_each_goal_of_a_group_shift_dataset(quality: ModuleType) -> None:
    results = [
        _result(quality, "none", seed, 0.92, 0.72, 9.0) for seed in range(3)
    ] + [
        _result(quality, "trivialaugment", seed, 0.90 + 0.01 * seed, 0.70, 10.0)
        for seed in range(3)
    ] + [
        _result(quality, "evoaug", seed, 0.925 + 0.01 * seed, 0.75 + 0.01 * seed, 12.0)
        for seed in range(3)
    ]  # fmt: skip
    table, verdicts = quality.summarize(results)
    assert "| colored-digits | trivialaugment | 3 | 91.0 ± 1.0 | 70.0 ± 0.0 |" in table
    assert "| colored-digits | evoaug | 3 | 93.5 ± 1.0 | 76.0 ± 1.0 |" in table
    assert "| 12 | 1.20x | - |" in table  # 12 s over trivialaugment's 10 s; no search seconds
    assert verdicts == [
        "colored-digits: do no harm, evoaug mean test accuracy 93.5% vs the better of none and "
        "TrivialAugment (none) 92.0% (goal: at most 0.5 below): met",
        "colored-digits: do no harm, evoaug mean worst-group accuracy 76.0% vs the better of "
        "none and TrivialAugment (none) 72.0% (goal: at most 0.5 below): met",
        "colored-digits: do no harm, evoaug's worst seed (0) worst-group accuracy +3.0 points "
        "against the better of none and TrivialAugment on that seed (goal: at most 2 below)"
        ": met",
        "colored-digits: group left behind, evoaug worst-group accuracy +4.0 points over the "
        "best fixed policy (none) (goal: +2.0): met",
        "colored-digits: group left behind, evoaug test accuracy +1.5 points against the best "
        "fixed policy (none) (goal: at most 0.5 below): met",
        "colored-digits: evoaug fit time 1.20x TrivialAugment's (goal: at most 1.25x, target "
        "1.10x): met",
    ]


def test_summary_gives_the_search_share_where_the_fits_have_it(quality: ModuleType) -> None:
    import dataclasses

    def timed(arm: str, seed: int, wall: float, search: float | None) -> object:
        result = _result(quality, arm, seed, 0.9, 0.8, wall, "cifar10")
        return dataclasses.replace(result, search_seconds=search)

    results = [timed("trivialaugment", seed, 10.0, 0.0) for seed in range(3)]
    results += [timed("evoaug", seed, 14.0 + seed, 2.0 + seed) for seed in range(3)]
    results += [timed("evoaug-norest", 0, 14.0, None)]  # an older result: no search seconds
    table, _ = quality.summarize(results)
    # search over the rest of each fit: 2/12, 3/12, 4/12; the median is 25%
    assert "| cifar10 | evoaug | 3 | 90.0 ± 0.0 | 80.0 ± 0.0 | 10.0 ± 0.0 | 15 | 1.50x | 25% |" in (
        table
    )
    assert (
        "| cifar10 | trivialaugment | 3 | 90.0 ± 0.0 | 80.0 ± 0.0 | 10.0 ± 0.0 | 10 | 1.00x | - |"
        in (table)
    )
    assert "| 14 | 1.40x | - |" in table  # evoaug-norest


def test_summary_says_not_met_when_evoaug_falls_short(quality: ModuleType) -> None:
    results = [_result(quality, "none", 0, 0.95, 0.90, 5.0, "cifar10-small")]
    results += [_result(quality, "trivialaugment", 0, 0.96, 0.80, 5.0, "cifar10-small")]
    results += [_result(quality, "evoaug", 0, 0.80, 0.87, 9.0, "cifar10-small")]
    _, verdicts = quality.summarize(results)
    assert [v.rsplit(": ", 1)[1] for v in verdicts] == [
        "NOT met",  # accuracy 80 vs trivialaugment's 96
        "NOT met",  # worst group 87 vs none's 90
        "NOT met",  # seed 0: 87 < 90 - 2
        "NOT met",  # trivialaugment only +1 over none
        "NOT met",  # evoaug 16 points below trivialaugment
        "NOT met",  # 1.8x trivialaugment's time
    ]
    assert "TrivialAugment +1.0 points over none (goal: at least +2.0)" in verdicts[3]


def test_extract_archive_finds_the_tree_once_and_explains_a_missing_file(
    tmp_path: Path, bench_module: Callable[[str], ModuleType]
) -> None:
    common = bench_module("_common")
    tree = tmp_path / "src" / "cifar" / "train" / "cat"
    tree.mkdir(parents=True)
    (tree / "a.jpg").write_bytes(b"x")
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar", arcname="cifar")
    root = common.extract_archive(archive, tmp_path / "cache", contains="train")
    assert root == tmp_path / "cache" / "cifar" / "cifar"
    assert (root / "train" / "cat" / "a.jpg").read_bytes() == b"x"
    archive.unlink()  # extracted once: the archive is no longer needed
    assert common.extract_archive(archive, tmp_path / "cache", contains="train") == root
    with pytest.raises(SystemExit, match="is not a file"):
        common.extract_archive(tmp_path / "none.tar.gz", tmp_path / "cache2", contains="train")
