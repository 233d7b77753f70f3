"""A real fit killed with SIGKILL after a generation, resumed from its last checkpoint in a new
process, chooses the same policies as an uninterrupted run with the same seed (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evoaug.search import read_history

SCRIPT = Path(__file__).parent / "scripts" / "fit_digits.py"
ENV = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONWARNINGS": "ignore"}


def _start(root: Path, *args: str) -> subprocess.Popen[str]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "stdout.txt").open("a") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(
            [sys.executable, str(SCRIPT), str(root), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=ENV,
        )


def _finish(proc: subprocess.Popen[str], root: Path) -> None:
    assert proc.wait(timeout=300) == 0, (root / "stdout.txt").read_text()[-3000:]


def _generations(root: Path) -> int:
    path = root / "evoaug" / "history.jsonl"
    if not path.is_file():
        return 0
    records, _ = read_history(path)
    return len({r["generation"] for r in records})


def _history(root: Path) -> list[dict[str, Any]]:
    records, warnings = read_history(root / "evoaug" / "history.jsonl")
    assert warnings == []
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]  # wall time


def _timeline(root: Path) -> list[dict[str, Any]]:
    lines = (root / "evoaug" / "timeline.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_sigkill_after_a_generation_then_resume_gives_the_same_policies(tmp_path: Path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    uninterrupted = _start(full)
    killed = _start(part, "--hold-at-epoch", "2")
    deadline = time.monotonic() + 240
    while not (part / "HOLDING").exists():  # in epoch 2: the generations of epochs 0, 1 ran
        assert killed.poll() is None, (part / "stdout.txt").read_text()[-3000:]
        assert time.monotonic() < deadline, "the run never reached epoch 2"
        time.sleep(0.2)
    assert _generations(part) == 2
    os.kill(killed.pid, signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    assert not (part / "result.json").exists()
    _finish(uninterrupted, full)

    resumed = _start(part, "--resume", str(part / "ckpt" / "last.ckpt"))
    _finish(resumed, part)

    chosen = [line["policy"] for line in _timeline(part)]
    assert [line["epoch"] for line in _timeline(part)] == [0, 1, 2, 3]  # each epoch once
    assert chosen == [line["policy"] for line in _timeline(full)]
    assert len({json.dumps(p) for p in chosen}) > 1  # the search did change the policy
    assert _timeline(part) == _timeline(full)
    assert _history(part) == _history(full)
    assert json.loads((part / "result.json").read_text()) == json.loads(
        (full / "result.json").read_text()
    )
    for name in ("best_policy.yaml", "pareto.yaml"):
        assert (part / "evoaug" / name).read_text() == (full / "evoaug" / name).read_text()
