"""Smoke test of bench/throughput.py, unit tests of its goal lines (bench/_throughput_report.py)
and of the helpers in bench/_common.py."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
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
KORNIA_ROWS = (
    "kornia TrivialAugment, one op per call (uint8 in/out)",
    "kornia AugmentationSequential, per-sample (uint8 in/out)",
)
KORNIA_MISSING = "kornia is not installed: pip install -e '.[bench]'"
REQUIRE_EXTRAS = "EVOAUG_REQUIRE_EXTRAS"  # as in tests/offline/conftest.py: CI forbids the skip


@pytest.fixture(scope="module")
def common(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("_common")


@pytest.fixture(scope="module")
def rows(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("_throughput_report")


@dataclass(frozen=True)
class QuickRun:
    stdout: str
    before: str  # the docs page before the run
    after: str  # and after


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """``bench/throughput.py --quick --sizes 32 --write-docs`` into a copy of the docs page."""
    page = tmp_path_factory.mktemp("throughput") / "benchmarks.md"
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
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return QuickRun(proc.stdout, before, page.read_text(encoding="utf-8"))


def _table_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("| 32x32")]


@pytest.mark.timeout(90)
def test_quick_run_prints_every_method_and_writes_only_its_section(quick_run: QuickRun) -> None:
    table = _table_rows(quick_run.stdout)
    for method in METHOD_ROWS:
        assert any(method in row for row in table), f"no row for {method!r}:\n{quick_run.stdout}"
    # The CPU goal at 32x32 for both evoaug methods; 224x224 was not measured.
    lines = quick_run.stdout.splitlines()
    for label in ("TA", "5x2 policy"):
        goal = f"evoaug {label} per-sample (uint8) / torchvision per-batch = "
        line = next(line for line in lines if goal in line)
        assert line.startswith("32x32 (B=32, ")
        assert "(goal >= 0.6x, median of 1 run; the goal is judged on 5): " in line
        assert line.endswith((": met", ": NOT met"))
    assert not any("/ albumentations per image" in line for line in lines)

    after, before = quick_run.after, quick_run.before
    section = after.split("<!-- BEGIN throughput -->")[1].split("<!-- END throughput -->")[0]
    assert "bench/throughput.py --quick --sizes 32 --write-docs" in section
    assert all(method in section for method in METHOD_ROWS)
    assert "Goals (issue 21;" in section
    # Everything outside the section is untouched.
    head, tail = (
        before.split("<!-- BEGIN throughput -->")[0],
        before.split("<!-- END throughput -->")[1],
    )
    assert after.startswith(head)
    assert after.endswith(tail)


@pytest.mark.timeout(90)
def test_quick_run_has_the_kornia_rows(quick_run: QuickRun) -> None:
    if importlib.util.find_spec("kornia") is None:
        # Without the extra the script runs, says so, and leaves the kornia rows out.
        assert "note: the kornia rows are skipped: kornia is not installed" in quick_run.stdout
        if os.environ.get(REQUIRE_EXTRAS) == "1":
            pytest.fail(f"{KORNIA_MISSING}; {REQUIRE_EXTRAS}=1 forbids skipping", pytrace=False)
        pytest.skip(KORNIA_MISSING)
    table = _table_rows(quick_run.stdout)
    for method in KORNIA_ROWS:
        row = next((row for row in table if method in row), None)
        assert row is not None, f"no row for {method!r} in:\n{quick_run.stdout}"
        assert float(row.split("|")[3].replace(",", "")) > 0
    ta_row = next(row for row in table if KORNIA_ROWS[0] in row)
    assert ta_row.endswith("| 1.00x |")  # the reference of the `vs kornia TA` column
    section = quick_run.after.split("<!-- BEGIN throughput -->")[1]
    assert "- kornia: the uint8 batch is converted" in section
    assert "- kornia: 0.9." in section  # its version, among the machine facts


def test_kornia_peers_say_what_to_install_without_kornia(
    bench_module: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    peers = bench_module("_peers")
    monkeypatch.setitem(sys.modules, "kornia", None)  # `import kornia` raises ImportError
    with pytest.raises(ImportError, match=r"kornia is not installed .*install -e '\.\[bench\]'"):
        peers.kornia_peers()


def _rates(
    rows: ModuleType, evo: float, tv_batch: float, albu: float, kornia: float | None
) -> dict[int, list[tuple[str, float]]]:
    """Hand-made ``{side: [(row, images/s)]}``, the same rates at 32 and 224; the 5x2 policy
    runs at half of ``evo``, kornia's per-sample row at a quarter of ``kornia``."""
    measured = [
        (f"{rows.EVO_TA} ({rows.UINT8})", evo),
        (f"{rows.EVO_TA} ({rows.FLOAT})", 1.0),
        (f"{rows.EVO_5X2} ({rows.UINT8})", evo / 2),
        (f"{rows.TV_IMAGE} ({rows.UINT8})", 10.0),
        (f"{rows.TV_BATCH} ({rows.UINT8})", tv_batch),
        (f"{rows.ALBU} (uint8 HxWxC numpy, cpu)", albu),
    ]
    if kornia is not None:
        measured += [
            (f"{rows.KORNIA_TA} ({rows.UINT8})", kornia),
            (f"{rows.KORNIA_SEQ} ({rows.UINT8})", kornia / 4),
        ]
    return {32: measured, 224: measured}


def test_report_cpu_goals_met_and_not_met(rows: ModuleType) -> None:
    # TA: 120 / 100 per batch = 1.2x >= 0.6, 120 / 60 albumentations = 2.0x >= 1.5: met.
    # 5x2: 60 / 100 = 0.6x, exactly the goal: met; 60 / 60 = 1.0x < 1.5: NOT met.
    table, goals = rows.report(
        _rates(rows, 120.0, 100.0, 60.0, 40.0), {32: 256, 224: 64}, 2, device="cpu", repeats=5
    )
    assert goals == [
        "32x32 (B=256, 2 threads): evoaug TA per-sample (uint8) / torchvision per-batch = 1.20x"
        " (goal >= 0.6x, median of 5 runs): met",
        "32x32 (B=256, 2 threads): evoaug 5x2 policy per-sample (uint8) / torchvision per-batch"
        " = 0.60x (goal >= 0.6x, median of 5 runs): met",
        "224x224 (B=64, 2 threads): evoaug TA per-sample (uint8) / albumentations per image"
        " = 2.00x (goal >= 1.5x, median of 5 runs): met",
        "224x224 (B=64, 2 threads): evoaug 5x2 policy per-sample (uint8) / albumentations per"
        " image = 1.00x (goal >= 1.5x, median of 5 runs): NOT met",
    ]
    lines = table.splitlines()
    assert lines[0].endswith(
        "| vs torchvision per-image | vs torchvision per-batch | vs kornia TA |"
    )
    assert lines[2] == (
        f"| 32x32 (B=256) | {rows.EVO_TA} ({rows.UINT8}) | 120 | 12.00x | 1.20x | 3.00x |"
    )


def test_report_gpu_goals_against_torchvision_and_the_faster_kornia_row(rows: ModuleType) -> None:
    # TA: 50 / 100 = 0.5x per batch: met; 50 / 30 (kornia TA, the faster row) = 1.67x: NOT met.
    _, goals = rows.report(
        _rates(rows, 50.0, 100.0, 1.0, 30.0), {32: 256, 224: 64}, 16, device="cuda", repeats=1
    )
    assert len(goals) == 8  # 2 sizes x 2 peers x 2 evoaug methods; no CPU goal
    assert goals[0] == (
        "32x32 (B=256, cuda): evoaug TA per-sample (uint8) / torchvision per-batch = 0.50x"
        " (goal >= 0.5x, median of 1 run; the goal is judged on 5): met"
    )
    kornia = [line for line in goals if "/ kornia (the faster of its rows) = " in line]
    assert len(kornia) == 4
    assert kornia[0] == (
        "32x32 (B=256, cuda): evoaug TA per-sample (uint8) / kornia (the faster of its rows)"
        " = 1.67x (goal >= 2x, median of 1 run; the goal is judged on 5): NOT met"
    )
    assert all(line.endswith(": NOT met") for line in kornia)
    assert sum(line.endswith(": NOT met") for line in goals) == 6  # 5x2 misses torchvision too

    only_32 = {32: _rates(rows, 200.0, 100.0, 1.0, 40.0)[32]}  # 5x2: 1.0x, 2.5x
    _, met = rows.report(only_32, {32: 256}, 16, device="cuda")
    assert len(met) == 4  # only the size in the results
    assert all(line.endswith(": met") for line in met), met


def test_report_without_kornia_says_the_goal_was_not_measured(rows: ModuleType) -> None:
    table, goals = rows.report(
        _rates(rows, 50.0, 100.0, 1.0, None), {32: 256, 224: 64}, 16, device="cuda"
    )
    missing = [line for line in goals if "kornia" in line]
    assert len(missing) == 4
    expected = "not measured (no kornia (the faster of its rows) row; kornia needs `pip install"
    assert all(expected in line for line in missing), missing
    assert table.splitlines()[2].endswith("| - |")  # no kornia TA to compare with


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
