"""Fairness report: a run directory in, ``report.html``, ``report.md`` and ``report.json`` out.

:func:`write_report` reads what a run saved in ``<trainer log dir>/evoaug/`` (test predictions
with groups, the search history, the chosen policy, the configuration), compares it with
baseline runs, and writes a self-contained HTML page (figures embedded, no script, no network),
a Markdown version and the numbers as JSON. :func:`build_report` returns the computed
:class:`Report` without writing anything.

* Per-group metrics: fairlearn's ``MetricFrame`` with stratified bootstrap intervals
  (:class:`GroupMetrics`); against a baseline, a paired bootstrap of the changes
  (:class:`Comparison`).
* What is read, and what happens when a file is missing: :mod:`evoaug.report._load`.

Example:
    >>> import tempfile, pathlib
    >>> from evoaug.report._examples import example_run
    >>> report = build_report(example_run(pathlib.Path(tempfile.mkdtemp())), n_bootstrap=100)
    >>> report.metrics.group_names[report.metrics.worst_group]
    'minority'
"""

from evoaug.report._compare import Change, Comparison
from evoaug.report._load import RunData, load_run
from evoaug.report._metrics import BOOTSTRAP_SAMPLES, CONFIDENCE, GroupMetrics
from evoaug.report._policy import ChosenPolicy
from evoaug.report._predictions import PredictionTable
from evoaug.report._report import Baseline, Report, build_report
from evoaug.report._samples import Samples
from evoaug.report._search import SearchSummary
from evoaug.report._write import REPORT_FILE, render, write_report

__all__ = [
    "BOOTSTRAP_SAMPLES",
    "CONFIDENCE",
    "REPORT_FILE",
    "Baseline",
    "Change",
    "ChosenPolicy",
    "Comparison",
    "GroupMetrics",
    "PredictionTable",
    "Report",
    "RunData",
    "Samples",
    "SearchSummary",
    "build_report",
    "load_run",
    "render",
    "write_report",
]
