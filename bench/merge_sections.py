"""Copy named sections of a results page into docs/benchmarks.md.

``bench/gpu.sh`` runs on a borrowed GPU machine and writes its tables into a copy of the docs
page in its results folder; this script brings the sections back:

    python bench/merge_sections.py bench/results/gpu/benchmarks.md \
        throughput_cuda callback_overhead_cifar10 quality_gpu search_cost_cuda

Only the named sections change; a section missing from the results page is an error.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import DOCS_PAGE, write_docs_section


def read_section(page: Path, name: str) -> str:
    """The text between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` in ``page``."""
    text = page.read_text(encoding="utf-8")
    match = re.search(
        rf"<!-- BEGIN {re.escape(name)} -->\n(.*?)\n<!-- END {re.escape(name)} -->", text, re.S
    )
    if match is None:
        raise SystemExit(f"{page} has no section {name!r}")
    return match.group(1)


def main(argv: Sequence[str] | None = None) -> None:
    """Copy each named section from the source page into the docs page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("sections", nargs="+")
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE)
    args = parser.parse_args(argv)
    for name in args.sections:
        write_docs_section(args.docs, name, read_section(args.source, name))
        print(f"{name}: copied into {args.docs}")


if __name__ == "__main__":
    main()
