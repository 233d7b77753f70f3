"""`mkdocs build --strict` passes: no broken link, anchor, nav entry or cross-reference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MISSING = (
    "the docs toolchain is not installed: pip install -e '.[docs]' "
    "(mkdocs, mkdocs-material, mkdocstrings[python])"
)

for _module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
    pytest.importorskip(_module, reason=MISSING)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1", NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(REPO / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-6000:]}"
    return out


def test_every_page_is_built(site: Path) -> None:
    pages = [p.stem for p in (REPO / "docs").glob("*.md") if p.stem != "index"]
    for page in pages:
        assert (site / page / "index.html").is_file(), page
    assert (site / "api" / "search" / "index.html").is_file()
    assert (site / "images" / "report-digits.png").is_file()


def test_api_reference_renders_docstrings(site: Path) -> None:
    html = (site / "api" / "search" / "index.html").read_text(encoding="utf-8")
    assert 'id="evoaug.search.Search"' in html
    assert "NSGA-II" in html
    # `Example:` sections render as code, not as Markdown text (docs/griffe_docstrings.py).
    assert "&gt;&gt;&gt;" in html
    assert "<blockquote>" not in html


def test_site_needs_no_network(site: Path) -> None:
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in html, page
        assert '<script src="http' not in html, page
    assert not list(site.rglob("gen_ops_table.py")), "build code must not be published"


def test_op_table_is_in_the_built_page(site: Path) -> None:
    html = (site / "concepts" / "index.html").read_text(encoding="utf-8")
    assert "<code>Posterize</code>" in html
    assert "24 built-in ops." in html or "built-in ops." in html
