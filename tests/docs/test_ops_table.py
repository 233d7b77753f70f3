"""The op table of docs/concepts.md is generated from the op registry and matches it exactly."""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path
from types import ModuleType

import pytest

import evoaug
from evoaug.ops import BUILTIN_OPS, get_op, unregister_op

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_gen_ops_table", REPO / "docs" / "gen_ops_table.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load()


def _rows(section: str) -> dict[str, list[str]]:
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def _section(text: str) -> str:
    start, end = text.index(gen.BEGIN), text.index(gen.END) + len(gen.END)
    return text[start:end]


def test_table_lists_exactly_the_builtin_ops_with_their_ranges() -> None:
    rows = _rows(gen.render_table())
    assert set(BUILTIN_OPS) <= set(evoaug.available_ops())
    assert sorted(rows) == [name for name in evoaug.available_ops() if name in BUILTIN_OPS]
    assert list(rows) == list(BUILTIN_OPS)  # declaration order: geometric, colour, occlusion
    for name, (low, high, signed, description) in rows.items():
        spec = get_op(name)
        if spec.has_magnitude:
            assert math.isclose(float(low), spec.low, rel_tol=1e-5, abs_tol=1e-12), name
            assert math.isclose(float(high), spec.high, rel_tol=1e-5, abs_tol=1e-12), name
        else:
            assert (low, high) == ("-", "-"), name
        assert signed == ("±" if spec.signed else ""), name
        assert description == spec.description, name


def test_committed_page_is_up_to_date() -> None:
    text = gen.PAGE.read_text(encoding="utf-8")
    assert _section(text) == gen.render_table(), (
        "docs/concepts.md has a stale op table; run: python docs/gen_ops_table.py"
    )


def test_custom_ops_are_not_in_the_catalog() -> None:
    evoaug.register_op("DocsTableProbe", low=0.0, high=0.5)(lambda images, magnitudes: images)
    try:
        assert "DocsTableProbe" not in gen.render_table()
    finally:
        unregister_op("DocsTableProbe")


def test_hook_regenerates_a_stale_table() -> None:
    stale = f"# Ops\n\n{gen.BEGIN}\n| `Rotate` | 0 | 30 | ± | STALE |\n{gen.END}\n\nAfter.\n"
    out = gen.on_page_markdown(stale, page=None)
    assert gen.render_table() in out
    assert "STALE" not in out and out.endswith("After.\n")
    assert gen.on_page_markdown("# No table\n", page=None) == "# No table\n"


def test_script_rewrites_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "concepts.md"
    shutil.copy(gen.PAGE, page)
    page.write_text(page.read_text(encoding="utf-8").replace("| `Rotate` |", "| `Rotate` | x |"))
    monkeypatch.setattr(gen, "PAGE", page)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert _section(page.read_text(encoding="utf-8")) == gen.render_table()


def test_a_page_without_exactly_one_section_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected one"):
        gen.replace_section("no markers here")
