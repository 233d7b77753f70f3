"""bench/gpu.sh fits in the 10 minutes a borrowed GPU machine gives one command (issue 21)."""

from __future__ import annotations

import re
from pathlib import Path

GPU_SH = Path(__file__).resolve().parents[2] / "bench" / "gpu.sh"
TEN_MINUTES = 600


def _default(text: str, name: str) -> str:
    match = re.search(rf"^{name}=\$\{{{name}:-([^}}]*)\}}", text, re.M)
    assert match is not None, f"no default for {name} in {GPU_SH}"
    return match.group(1)


def test_default_steps_fit_in_ten_minutes() -> None:
    text = GPU_SH.read_text(encoding="utf-8")
    steps = _default(text, "STEPS").split()
    assert steps == ["tests", "throughput", "search_cost", "overhead"]  # quality only by name
    limits: dict[str, int] = {}
    for block in re.split(r"^if wants ", text, flags=re.M)[1:]:
        name = re.match(r"\w+", block)
        assert name is not None
        seconds = [int(s) for s in re.findall(r"^\s*step \w+ (\d+) ", block, re.M)]
        limits[name.group()] = limits.get(name.group(), 0) + sum(seconds)
    assert all(limits.get(step, 0) > 0 for step in steps), limits
    assert sum(limits[step] for step in steps) <= TEN_MINUTES, limits
    assert int(_default(text, "BUDGET")) <= TEN_MINUTES


def test_overhead_runs_three_repeats_and_throughput_has_kornia() -> None:
    text = GPU_SH.read_text(encoding="utf-8")
    full_run = text.split("if [[ $QUICK == 1 ]]; then")[1].split("else")[1].split("fi")[0]
    assert "REPEATS=3" in full_run
    overhead = text.split("if wants overhead")[1].split("\nfi")[0]
    assert '--repeats "$REPEATS"' in overhead
    assert 'optional-dependencies"]["bench"]' in text  # the bench extra, from pyproject
