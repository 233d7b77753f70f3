"""Render a report and write ``report.html``, ``report.md`` and ``report.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from evoaug._files import atomic_write_text
from evoaug.exceptions import ConfigError
from evoaug.report._figures import build_figures
from evoaug.report._markdown import render_markdown
from evoaug.report._metrics import BOOTSTRAP_SAMPLES, CONFIDENCE
from evoaug.report._render import render_html
from evoaug.report._report import Report, build_report

__all__ = ["REPORT_FILE", "render", "write_report"]

REPORT_FILE = "report.html"


def render(report: Report) -> tuple[str, str, str]:
    """The report as ``(html, markdown, json)`` text; draws the figures.

    Raises:
        Whatever a figure raises: nothing is written by :func:`write_report` then.

    """
    figures = build_figures(report)
    page = render_html(report, figures)
    markdown = render_markdown(report, figures)
    data = json.dumps(report.to_dict(), indent=2, allow_nan=False, ensure_ascii=False)
    return page, markdown, data + "\n"


def write_report(
    run_dir: str | Path,
    *,
    baselines: Sequence[str | Path] = (),
    out: str | Path | None = None,
    n_bootstrap: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[Path, Path, Path]:
    """Build the report of a run and write it as HTML, Markdown and JSON.

    The three texts are rendered completely before anything is written; each file is then
    written atomically (temporary file, fsync, rename), the HTML last. A failure while reading
    or rendering leaves no new file behind, and an existing report untouched.

    Args:
        run_dir: The run directory, ``<trainer log dir>/evoaug``.
        baselines: Run directories to compare against.
        out: Path of the HTML file (``.html``); default ``run_dir/report.html``. The Markdown
            and JSON files go beside it, with suffixes ``.md`` and ``.json``.
        n_bootstrap: Bootstrap resamples per interval.
        confidence: Level of the intervals.
        seed: Seed of the bootstrap and of the sample grid.

    Returns:
        ``(html_path, markdown_path, json_path)``.

    Raises:
        ConfigError: ``out`` does not end in ``.html``, a run directory is missing, or the run
            holds neither test predictions nor a search history.

    Example:
        >>> import tempfile, pathlib, json
        >>> from evoaug.report._examples import example_run
        >>> run_dir = example_run(pathlib.Path(tempfile.mkdtemp()))
        >>> html_path, md_path, json_path = write_report(run_dir, n_bootstrap=200)
        >>> html_path.name, md_path.name, json_path.name
        ('report.html', 'report.md', 'report.json')
        >>> json.loads(json_path.read_text())["metrics"]["worst_group"]["group"]
        'minority'

    """
    target = Path(run_dir) / REPORT_FILE if out is None else Path(out)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"`out` must be a path ending in '.html', got {str(target)!r}")
    report = build_report(
        run_dir, baselines=baselines, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed
    )
    page, markdown, data = render(report)
    md_path, json_path = target.with_suffix(".md"), target.with_suffix(".json")
    atomic_write_text(json_path, data)
    atomic_write_text(md_path, markdown)
    atomic_write_text(target, page)
    return target, md_path, json_path
