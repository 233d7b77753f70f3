"""Group, class and op names with HTML, script and quotes, from a run directory, come out of the
report as text: escaped in HTML (attributes included) and in Markdown, kept verbatim in JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

import evoaug
from evoaug import Policy
from evoaug.report import write_report
from evoaug.report._examples import example_run

SCRIPT = "<script>alert(1)</script>"
QUOTES = "\"'><img src=x onerror=alert(2)>"
OP = 'Op"<script>alert(3)</script>'
PAYLOADS = (SCRIPT, QUOTES, OP)


def _markdown_text(markdown: str) -> str:
    """Markdown outside fenced code blocks (inside them, text is shown, never interpreted)."""
    return re.sub(r"(?ms)^(`{3,}).*?^\1\s*$", "", markdown)


def _check(html_path: Path, md_path: Path, json_path: Path, names: tuple[str, ...]) -> None:
    page = html_path.read_text()
    assert "<script" not in page.lower() and "<img src=x" not in page
    for name in PAYLOADS:
        assert name not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # every attribute value is whole: no quote from the data closes one early
    for tag in re.findall(r"<[a-zA-Z][^>]*>", page):
        assert tag.count('"') % 2 == 0, tag
        assert "onerror" not in tag.lower(), tag
    markdown = _markdown_text(md_path.read_text())
    assert "<" not in markdown and ">" not in markdown.replace("&gt;", "")
    data = json.dumps(json.loads(json_path.read_text()), ensure_ascii=False)
    for name in names:  # JSON is data: the names are kept as they are
        assert json.dumps(name, ensure_ascii=False)[1:-1] in data


def test_hostile_group_class_and_op_names_are_escaped(tmp_path: Path) -> None:
    @evoaug.register_op(OP, low=0.0, high=1.0)
    def hostile(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images

    try:
        run_dir = example_run(tmp_path, group_names=("majority", SCRIPT), accuracy=(0.9, 0.6))
        meta = json.loads((run_dir / "test_meta.json").read_text())
        meta["class_names"] = [QUOTES, SCRIPT] + [f"class {c}" for c in range(2, 10)]
        meta["sensitive_attribute"] = QUOTES
        (run_dir / "test_meta.json").write_text(json.dumps(meta))
        policy = Policy.from_genes([[(OP, 0.5, 0.3)], [("Invert", 0.2, 0.0)]], name=QUOTES)
        policy.to_yaml(run_dir / "best_policy.yaml")
        with (run_dir / "history.jsonl").open("a") as handle:  # a searched candidate with it
            objectives = {"accuracy": 0.7, "fairness": 0.5, "diversity": 0.2}
            record = {"generation": 9, "epoch": 9, "rank": 0, "index": 0, "failure": QUOTES,
                      "policy": policy.to_dict(), "genome": [], "seconds": 0.1,
                      "objectives": objectives}  # fmt: skip
            handle.write(json.dumps(record) + "\n")
        paths = write_report(run_dir, n_bootstrap=50)
    finally:
        evoaug.ops.unregister_op(OP)
    _check(*paths, names=(SCRIPT, QUOTES))
    page = paths[0].read_text()
    assert "Op&quot;&lt;script&gt;alert(3)&lt;/script&gt;" in page  # the op, as text
    assert "&quot;&#x27;&gt;&lt;img src=x onerror=alert(2)&gt;" in page  # attribute, policy name


def test_hostile_class_names_as_the_groups_are_escaped(tmp_path: Path) -> None:
    run_dir = example_run(tmp_path, num_classes=2, generations=1, samples=False)
    meta = json.loads((run_dir / "test_meta.json").read_text())
    meta.update(class_names=[SCRIPT, QUOTES], group_names=None, groups_source="classes")
    (run_dir / "test_meta.json").write_text(json.dumps(meta))
    rows = (run_dir / "test_predictions.csv").read_text().splitlines()
    cells = [row.split(",") for row in rows[1:]]
    blanked = [rows[0]] + [",".join([*c[:3], "", c[4]]) for c in cells]  # no group column
    (run_dir / "test_predictions.csv").write_text("\n".join(blanked) + "\n")
    paths = write_report(run_dir, n_bootstrap=50)
    _check(*paths, names=(SCRIPT, QUOTES))
    page = paths[0].read_text()
    assert "&quot;&#x27;&gt;&lt;img src=x onerror=alert(2)&gt;" in page  # the class, as a group
