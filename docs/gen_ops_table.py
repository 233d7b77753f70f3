"""The op catalog table of ``docs/concepts.md``, generated from evoaug's op registry.

Three uses, one function (:func:`render_table`), so the table cannot drift from the code:

- an MkDocs hook (``hooks:`` in ``mkdocs.yml``): every build replaces the marked section of the
  page with a freshly generated table;
- a script, ``python docs/gen_ops_table.py``, that rewrites the marked section of
  ``docs/concepts.md`` in place (so the file reads right on GitHub too);
- ``tests/docs/`` checks that the section in the file equals :func:`render_table`.

The section is the text between ``<!-- BEGIN ops-table -->`` and ``<!-- END ops-table -->``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "PAGE", "render_table", "replace_section", "main"]

BEGIN = "<!-- BEGIN ops-table -->"
END = "<!-- END ops-table -->"
PAGE = Path(__file__).resolve().parent / "concepts.md"
_SECTION = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)


def _number(value: float) -> str:
    return f"{value:g}"


def render_table() -> str:
    """The Markdown table of the built-in ops, in declaration order, between the markers.

    Columns: the op's name, its magnitude at level 0 and at level 1 (``OpSpec.low`` and
    ``OpSpec.high``; "-" for ops without a magnitude), whether each image's magnitude gets a
    random sign, and the op's one-line description.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from evoaug.ops import BUILTIN_OPS, get_op

    lines = [
        BEGIN,
        "",
        "| Op | Level 0 | Level 1 | Signed | Magnitude |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in BUILTIN_OPS:
        spec = get_op(name)
        if spec.has_magnitude:
            low, high = _number(spec.low), _number(spec.high)
        else:
            low = high = "-"
        signed = "±" if spec.signed else ""
        lines.append(f"| `{name}` | {low} | {high} | {signed} | {spec.description} |")
    lines += ["", f"{len(BUILTIN_OPS)} built-in ops.", "", END]
    return "\n".join(lines)


def replace_section(text: str) -> str:
    """``text`` with its marked op-table section regenerated.

    Raises:
        ValueError: ``text`` does not hold exactly one marked section.
    """
    found = len(_SECTION.findall(text))
    if found != 1:
        raise ValueError(f"expected one {BEGIN} ... {END} section, found {found}")
    table = render_table()
    return _SECTION.sub(lambda _: table, text)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """MkDocs hook: regenerate the op table of the page that holds the markers."""
    if BEGIN not in markdown:
        return markdown
    return replace_section(markdown)


def main(argv: list[str] | None = None) -> int:
    """Rewrite the op table of ``docs/concepts.md`` (or ``--check``: fail if it is stale)."""
    args = sys.argv[1:] if argv is None else argv
    text = PAGE.read_text(encoding="utf-8")
    fresh = replace_section(text)
    if "--check" in args:
        if fresh != text:
            print(f"{PAGE} has a stale op table; run: python docs/gen_ops_table.py")
            return 1
        return 0
    if fresh != text:
        PAGE.write_text(fresh, encoding="utf-8")
        print(f"rewrote the op table of {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
