"""bench/op_budget.py: a tiny real run, and the budget arithmetic on a table made by hand."""

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
SCRIPT = ROOT / "bench" / "op_budget.py"
TA_OPS = (
    "Identity",
    "ShearX",
    "ShearY",
    "TranslateX",
    "TranslateY",
    "Rotate",
    "Brightness",
    "Color",
    "Contrast",
    "Sharpness",
    "Posterize",
    "Solarize",
    "AutoContrast",
    "Equalize",
)


@pytest.fixture(scope="module")
def budget(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("op_budget")


@pytest.mark.timeout(90)
def test_tiny_run_prints_every_op_and_writes_only_its_section(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    shutil.copy(ROOT / "docs" / "benchmarks.md", page)
    before = page.read_text(encoding="utf-8")
    argv = ["--size", "16", "--batch-size", "4", "--repeats", "1", "--warmup", "0"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *argv, "--calls", "1", "--write-docs", "--docs", str(page)],
        cwd=ROOT,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(" | ")[0].lstrip("| ") for line in proc.stdout.splitlines()]
    assert [r for r in rows if r in TA_OPS] == list(TA_OPS)
    assert "budget for the goal (5x):" in proc.stdout
    assert "ops within the budget:" in proc.stdout
    assert "fused" not in proc.stdout  # only with --fused
    after = page.read_text(encoding="utf-8")
    section = after.split("<!-- BEGIN op_budget -->")[1].split("<!-- END op_budget -->")[0]
    assert "bench/op_budget.py --size 16 --batch-size 4" in section
    assert "--docs" not in section
    assert "| Equalize |" in section
    if "<!-- BEGIN op_budget -->" in before:  # the rest of the page is untouched
        assert after.startswith(before.split("<!-- BEGIN op_budget -->")[0])
        assert after.endswith(before.split("<!-- END op_budget -->")[1])
    else:
        assert after.startswith(before)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "`--size` must be >= 8 pixels, got 4" in proc.stderr


def test_report_divides_the_peer_by_the_goal_and_counts_passes(budget: ModuleType) -> None:
    table = {
        "Brightness": {"tv": 100.0, "evo": 50.0, "fused": 20.0, "cv": 10.0},
        "ShearX": {"tv": 600.0, "evo": 300.0, "fused": 400.0},
        budget.TV_WHOLE: {"tv": 500.0},
        budget.EVO_WHOLE: {"evo": 200.0},
        budget.ONE_PASS: {"evo": 25.0},
    }
    markdown, lines = budget.report(table, True)
    assert "| Brightness | 100 | 50 | 2.0x | 2.0 | 10 | 20 | 5.0x |" in markdown
    assert "| ShearX | 600 | 300 | 2.0x | 12.0 |  | 400 | 1.5x |" in markdown
    assert "| whole transform (evoaug: the preset, grouped) | 500 | 200 | 2.5x | 8.0 |" in markdown
    assert "budget for the goal (5x): 100 µs per image, 4.0 passes" in lines
    assert any("grouped, 200 µs (2.5x torchvision per image); grouping 25 µs" in x for x in lines)
    assert "ops within the budget: 1 of 2" in lines
    # OpenCV's cost where it has the op, evoaug's elsewhere: (10 + 300) / 2.
    assert (
        "OpenCV per image within the budget: 1 of 1; at OpenCV's cost for those ops (evoaug's "
        "for the others): 155 µs per image on average, plus grouping 25 µs"
    ) in lines
    # The faster of eager and fused: (20 + 300) / 2.
    assert any("on average: 160 µs per image, plus grouping 25 µs" in x for x in lines)


@pytest.mark.parametrize("name", ["Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"])
def test_opencv_reference_warps_give_evoaugs_pixels(budget: ModuleType, name: str) -> None:
    import numpy as np
    import torch

    from evoaug.ops import get_op
    from evoaug.ops._geometric import warp_nearest

    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    policy = budget.one_op_policies(32)[name]
    run = budget.opencv_op(name, policy, images, torch.Generator().manual_seed(5))
    drawn = budget.magnitudes(policy, 4, torch.Generator().manual_seed(5))  # opencv_op's draws
    expected = warp_nearest(images, get_op(name).affine(drawn, 32, 32))
    got = torch.from_numpy(np.stack(run())).permute(0, 3, 1, 2)
    assert torch.equal(got, expected)
