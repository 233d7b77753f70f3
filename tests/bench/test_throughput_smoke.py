"""Smoke test of bench/throughput.py and unit tests of the helpers in bench/_common.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "throughput.py"
METHOD_ROWS = (
    "evoaug TA, per-sample, batched (uint8 in/out)",
    "evoaug TA, per-sample, batched (float32 in/out)",
    "evoaug TA nearest, per-sample, batched (uint8 in/out)",
    "evoaug 5x2 policy, per-sample, batched (uint8 in/out)",
    "evoaug 5x2 policy, per-sample, batched (float32 in/out)",
    "torchvision TrivialAugmentWide, per image (uint8 in/out)",
    "torchvision TrivialAugmentWide, per batch (uint8 in/out)",
    "albumentations, per image",
)


@pytest.fixture(scope="module")
def common(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("_common")


@pytest.mark.timeout(60)
def test_quick_run_prints_every_method_and_writes_only_its_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    shutil.copy(ROOT / "docs" / "benchmarks.md", page)
    before = page.read_text(encoding="utf-8")
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    argv = [sys.executable, str(SCRIPT), "--quick", "--sizes", "32", "--write-docs"]
    proc = subprocess.run(
        [*argv, "--docs", str(page)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| 32x32")]
    for method in METHOD_ROWS:
        assert any(method in row for row in rows), f"no row for {method!r} in:\n{proc.stdout}"
    for label in ("bilinear", "nearest"):
        for peer in ("per-image", "per-batch"):
            assert f"evoaug TA {label} per-sample (uint8) / torchvision {peer} =" in proc.stdout

    after = page.read_text(encoding="utf-8")
    section = after.split("<!-- BEGIN throughput -->")[1].split("<!-- END throughput -->")[0]
    assert "bench/throughput.py --quick --sizes 32 --write-docs" in section
    assert all(method in section for method in METHOD_ROWS)
    # Everything outside the section is untouched.
    head, tail = (
        before.split("<!-- BEGIN throughput -->")[0],
        before.split("<!-- END throughput -->")[1],
    )
    assert after.startswith(head)
    assert after.endswith(tail)


def test_write_docs_section_replaces_between_markers(common: ModuleType, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n<!-- BEGIN a -->\nold\n<!-- END a -->\nkeep\n<!-- BEGIN b -->\nb\n<!-- END b -->\n"
    )
    common.write_docs_section(page, "a", "new\ntable\n")
    assert page.read_text() == (
        "# T\n<!-- BEGIN a -->\nnew\ntable\n<!-- END a -->\nkeep\n<!-- BEGIN b -->\nb\n"
        "<!-- END b -->\n"
    )


def test_write_docs_section_appends_a_missing_section(common: ModuleType, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# T\n")
    common.write_docs_section(page, "c", "x")
    assert page.read_text() == "# T\n\n<!-- BEGIN c -->\nx\n<!-- END c -->\n"


def test_write_docs_section_rejects_broken_markers(common: ModuleType, tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- BEGIN a -->\nno end\n")
    with pytest.raises(ValueError, match="once each, in that order"):
        common.write_docs_section(page, "a", "x")
    with pytest.raises(ValueError, match="`name` must use letters"):
        common.write_docs_section(page, "a b", "x")


def test_markdown_table_and_median_rate(common: ModuleType) -> None:
    assert common.markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n| --- | --- |\n| 1 | x |"
    calls: list[int] = []
    rate = common.median_rate(lambda: calls.append(1), n_items=10, repeats=3, warmup=2)
    assert len(calls) == 5
    assert rate > 0
    with pytest.raises(ValueError, match="`repeats` must be an int >= 1"):
        common.median_rate(lambda: None, n_items=1, repeats=0)


def test_machine_info_names_cpu_cores_and_versions(common: ModuleType) -> None:
    info = common.machine_info()
    for key in ("date", "cpu", "cores", "python", "torch", "numpy"):
        assert info.get(key), key


def test_without_output_options_keeps_only_the_measurement(common: ModuleType) -> None:
    argv = ["--sizes", "32", "--write-docs", "--docs", "/tmp/p.md", "--docs=/x.md", "--quick"]
    assert common.without_output_options(argv) == ["--sizes", "32", "--quick"]
    assert common.without_output_options([]) == []


def test_cpu_share_warns_only_above_the_threshold(common: ModuleType) -> None:
    share = common.CpuShare()
    assert share.warning() == ""  # not measured
    share.foreign = 0.05
    assert share.warning(0.05) == ""
    share.foreign = 0.3
    assert share.warning(0.05).startswith("Warning: other processes took 30% of the CPU time")
