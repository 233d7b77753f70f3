"""Untrusted strings (group, class, op, policy names, command) are escaped in every output."""

from __future__ import annotations

import json
import re

import torch

import evoaug
from evoaug import Policy
from evoaug.report import write_report

XSS = "<script>alert(1)</script>"
OP = "<img src=x onerror=alert(2)>"


def _no_active_content(page: str) -> None:
    assert "<script" not in page.lower()
    assert "<img src=x" not in page
    assert "onerror=" not in page.replace("onerror=alert(2)&gt;", "")
    # every image is embedded, nothing links or loads anything
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attribute.startswith(("data:image/png;base64,", "#")), attribute
    assert "http://" not in page.split("</head>")[0] and "https://" not in page
    assert "@import" not in page and "url(" not in page


def _split_fences(markdown: str) -> tuple[str, str]:
    """(text outside fenced code blocks, text inside them), per CommonMark's fence rules."""
    outside, inside, fence = [], [], ""
    for line in markdown.splitlines():
        ticks = len(line) - len(line.lstrip("`"))
        if not fence and ticks >= 3:
            fence = "`" * ticks
        elif fence and line.strip() == "`" * len(line.strip()) and ticks >= len(fence):
            fence = ""
        else:
            (inside if fence else outside).append(line)
    return "\n".join(outside), "\n".join(inside)


def test_group_and_op_names_with_html_are_escaped(rt):  # type: ignore[no-untyped-def]
    @evoaug.register_op(OP, low=0.0, high=1.0)
    def evil(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images

    try:
        run_dir = rt.run(group_names=("majority", XSS), accuracy=(0.9, 0.6))
        policy = Policy.from_genes([[(OP, 0.5, 0.3)], [("Invert", 0.2, 0.0)]], name=XSS)
        policy.to_yaml(run_dir / "best_policy.yaml")
        info = json.loads((run_dir / "run.json").read_text())
        info["command"] = f"evoaug fit --data.name '{XSS}' | tee `log`"
        (run_dir / "run.json").write_text(json.dumps(info))
        (run_dir.parent / "config.yaml").write_text(f"data:\n  name: '{XSS}'\n```\n{XSS}\n")
        html_path, md_path, json_path = write_report(run_dir, n_bootstrap=50)
    finally:
        evoaug.ops.unregister_op(OP)
    page = html_path.read_text()
    _no_active_content(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the group, the policy, the config
    assert "&lt;img src=x onerror=alert(2)&gt;" in page  # the op, in the table and the YAML
    assert "Content-Security-Policy" in page
    markdown = md_path.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    assert "&lt;img src=x onerror=alert(2)&gt;" in markdown
    outside, inside = _split_fences(markdown)
    assert "<" not in outside and ">" not in outside
    assert "```\n<script>" in inside  # the config's own fence stayed inside ours
    # JSON keeps the real names (it is data, not markup)
    data = json.loads(json_path.read_text())
    assert data["metrics"]["worst_group"]["group"] == XSS


def test_op_unregistered_when_reporting_still_shows_the_policy(rt):  # type: ignore[no-untyped-def]
    @evoaug.register_op("Custom|Op", low=0.0, high=2.0)
    def custom(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images

    try:
        run_dir = rt.run(generations=1)
        Policy.from_genes([[("Custom|Op", 1.0, 0.5)]]).to_yaml(run_dir / "best_policy.yaml")
    finally:
        evoaug.ops.unregister_op("Custom|Op")
    html_path, md_path, _ = write_report(run_dir, n_bootstrap=50)
    page = html_path.read_text()
    assert "Custom|Op" in page and "n/a (op not registered here)" in page
    assert "cannot be applied here" in page  # no sample grid without the op
    assert "Custom\\|Op" in md_path.read_text()  # a pipe would split the Markdown table
