"""bench/guard_horizon.py: every guard of a quick run, recorded at the shorter look-aheads too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_quick_run_records_each_guard_at_every_length(tmp_path: Path) -> None:
    out = tmp_path / "guards.jsonl"
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "guard_horizon.py"), "--steps", "3", "6",
            "--out", str(out), "--", "--quick", "--arms", "evoaug",
            "--results", str(tmp_path / "quality.jsonl"),
        ],
        cwd=ROOT, env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}, capture_output=True,
        text=True, timeout=540, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    guards = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert guards, "the quick run's generation guarded no challenger"
    for guard in guards:
        assert (guard["dataset"], guard["seed"]) == ("digits", 0)
        assert sorted(guard["partial"]) == ["3", "6"]
        for a in guard["partial"].values():
            assert -1.0 <= a["q10"] <= a["mean"] <= a["q90"] <= 1.0
        assert "incumbent" in guard["full"] and isinstance(guard["passed"], bool)
    first = guards[0]
    assert f"digits seed 0 {first['challenger']}: 3: " in done.stdout
