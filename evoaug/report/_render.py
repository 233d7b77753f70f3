"""The report as one self-contained HTML page.

No script, no external resource of any kind (images are ``data:`` URIs, CSS is inline, fonts are
the reader's), and a Content-Security-Policy that forbids anything else, so the page works
offline and without JavaScript. Every string from the run (group, class, op and policy names,
the command, the configuration) goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from evoaug._version import __version__
from evoaug.report._figures import ReportFigure
from evoaug.report._findings import level
from evoaug.report._report import Report
from evoaug.report._tables import (
    Table,
    change_table,
    decision_table,
    group_table,
    side_by_side_table,
    summary_table,
)

__all__ = ["CSP", "render_html"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;color:#1a1a1a;background:#fff;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5rem 2rem 3rem}
h1{font-size:1.6rem;margin:.2rem 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem}h3{margin-top:1.4rem}
.sub{color:#555;margin:0 0 1rem;word-break:break-all}
nav{font-size:.92rem;margin:.5rem 0 1rem}nav a{margin-right:.9rem;color:#1f5fa8}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #d8d8d8;padding:.28rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f5f8}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:600;background:#fafafa}
ul.findings li{margin:.3rem 0}
.notes{background:#fff8e6;border:1px solid #f0d58c;padding:.6rem 1rem;border-radius:4px}
.missing{color:#7a5b00;font-style:italic}
figure{margin:1rem 0 2rem}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#444;font-size:.9rem;margin-top:.3rem}
pre{background:#f6f8fa;padding:.7rem;overflow:auto;font-size:.85rem;white-space:pre-wrap;
word-break:break-word}
footer{margin-top:3rem;color:#777;font-size:.85rem}
"""


def e(value: object) -> str:
    """Escape any value for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def _table(table: Table, *, total_last: bool = False, numeric_from: int = 1) -> str:
    header, rows = table
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = ' class="total"' if total_last and i == len(rows) - 1 else ""
        cells = (
            f'<td class="num">{e(c)}</td>' if j >= numeric_from else f"<td>{e(c)}</td>"
            for j, c in enumerate(row)
        )
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def _plain(value: object) -> str:
    """A configuration value as text: lists joined by commas, the rest as ``str``."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _missing(text: str) -> str:
    return f'<p class="missing">{e(text)}</p>'


def _section(anchor: str, title: str, body: Sequence[str]) -> str:
    return f'<section id="{e(anchor)}"><h2>{e(title)}</h2>{"".join(body)}</section>'


def _summary(report: Report) -> str:
    body = ["<h3>Key findings</h3>"]
    if report.findings:
        body.append('<ul class="findings">')
        body.extend(f"<li>{e(f)}</li>" for f in report.findings)
        body.append("</ul>")
    else:
        body.append(_missing("Nothing to summarize."))
    body.append("<h3>Run</h3>")
    body.append(_kv(report.summary.items()))
    if report.notes:
        body.append('<h3>What is missing</h3><div class="notes"><ul>')
        body.extend(f"<li>{e(n)}</li>" for n in report.notes)
        body.append("</ul></div>")
    return _section("summary", "Summary", body)


def _groups(report: Report) -> str:
    metrics = report.metrics
    if metrics is None:
        body = [
            _missing("No test predictions (test_predictions.csv): per-group metrics need them.")
        ]
        return _section("groups", "Per-group metrics", body)
    source = report.groups_source
    if report.sensitive_attribute:
        source += f" ({report.sensitive_attribute})"
    body = [
        f"<p>Groups: {e(source)}. Point estimates from fairlearn's MetricFrame; brackets: "
        f"{level(report.confidence)} percentile intervals from {e(report.n_bootstrap)} bootstrap "
        "resamples within each group (stratified).</p>",
        _table(group_table(metrics), total_last=True),
        "<h3>Across groups</h3>",
        _table(summary_table(metrics)),
    ]
    if len(metrics.group_ids) < 2:
        body.append(_missing("Only one group: differences and ratios between groups need two."))
    return _section("groups", "Per-group metrics", body)


def _baselines(report: Report) -> str:
    if not report.baselines:
        return ""
    body = []
    if report.metrics is not None and any(b.metrics for b in report.baselines):
        body.append("<h3>Side by side</h3>")
        body.append(_table(side_by_side_table(report)))
    for label, table in change_table(report):
        body.append(f"<h3>Change against {e(label)}</h3>")
        body.append(_table(table))
    for b in report.baselines:
        if b.metrics is not None:
            body.append(f"<details><summary>All metrics of baseline {e(b.label)}</summary>")
            body.append(_table(group_table(b.metrics), total_last=True))
            body.append("</details>")
        else:
            body.append(_missing(f"Baseline {b.label}: no test predictions."))
    return _section("baselines", "Baselines", body)


def _figure(figure: ReportFigure) -> str:
    parts = [f'<figure id="{e(figure.key)}"><h3>{e(figure.title)}</h3>']
    if figure.png is None:
        parts.append(_missing(f"Not shown: {figure.note}"))
    else:
        parts.append(f'<img alt="{e(figure.title)}" src="data:image/png;base64,{figure.png}">')
        if figure.note:
            parts.append(_missing(figure.note))
    parts.append(f"<figcaption>{e(figure.caption)}</figcaption></figure>")
    return "".join(parts)


def _policy(report: Report) -> str:
    policy = report.policy
    if policy is None:
        return _section("policy", "Chosen policy", [_missing("No chosen policy was saved.")])
    sampling = policy.data.get("magnitude_sampling", "fixed")
    body = [
        f"<p>Policy {e(policy.name)} from {e(policy.source)}: one sub-policy is drawn per image; "
        "each of its ops fires with its probability.",
        " Levels are maxima: each image draws its level uniformly below them."
        if sampling == "uniform"
        else "",
        " Warps take each output pixel's nearest source pixel (no interpolation)."
        if policy.data.get("interpolation") == "nearest"
        else "",
        "</p>",
        _table(
            (
                ["Sub-policy", "Op", "Probability", "Level", "Magnitude"],
                [list(r.values()) for r in policy.rows()],
            ),
            numeric_from=2,
        ),
        "<h3>As YAML</h3>",
        f"<pre>{e(policy.to_yaml())}</pre>",
    ]
    return _section("policy", "Chosen policy", body)


def _search(report: Report) -> str:
    search = report.search
    if search is None:
        return ""
    rows = [
        ("Objectives", ", ".join(search.objectives)),
        ("Candidates", str(search.n_candidates)),
        ("Generations", str(len(search.generations))),
        ("Failed candidates", str(search.n_failed)),
        ("Final front", str(search.front.shape[0])),
    ]
    body = [_kv(rows)]
    if search.failures:
        failures = (
            ["Failure", "Candidates"],
            [[r, str(n)] for r, n in search.failures.most_common(10)],
        )
        body.append(_table(failures))
    return _section("search", "Search", body)


def _decisions(report: Report) -> str:
    if not report.run.decisions:
        return ""
    changes = sum(1 for d in report.run.decisions if d.get("changed"))
    intro = (
        f"<p>{len(report.run.decisions)} decisions, {changes} changed the policy. The "
        "incumbent stays unless a challenger's paired evidence clears zero: first its "
        "gradient-alignment gain over the incumbent and over no augmentation (proposal), then "
        "its look-ahead score (the mean of balanced and worst-group accuracy) against both "
        "(guard). Bounds are one-sided lower confidence bounds.</p>"
    )
    return _section("decisions", "Decisions", [intro, _table(decision_table(report))])


def _config(report: Report) -> str:
    body = []
    evo = report.run.info.get("evoaug")
    if isinstance(evo, dict) and evo:
        body.append("<h3>evoaug settings</h3>")
        body.append(_kv((str(k), _plain(v)) for k, v in evo.items()))
    command = report.run.info.get("command")
    if command:
        body.append(f"<h3>Command</h3><pre>{e(command)}</pre>")
    if report.run.config_text is not None:
        body.append(
            "<details><summary>LightningCLI configuration (config.yaml)</summary>"
            f"<pre>{e(report.run.config_text)}</pre></details>"
        )
    if report.versions:
        body.append("<h3>Versions</h3>")
        body.append(_kv(report.versions.items()))
    if not body:
        body.append(_missing("No run.json or config.yaml: the configuration is unknown."))
    return _section("config", "Configuration", body)


def render_html(report: Report, figures: Sequence[ReportFigure]) -> str:
    """The complete HTML page of ``report`` with ``figures`` embedded."""
    plots = [f for f in figures if f.key != "fig-samples"]
    samples = [f for f in figures if f.key == "fig-samples"]
    sections = [
        _summary(report),
        _groups(report),
        _baselines(report),
        _section("plots", "Plots", [_figure(f) for f in plots]),
        _policy(report),
        _section("samples", "Augmented samples", [_figure(f) for f in samples]),
        _search(report),
        _decisions(report),
        _config(report),
    ]
    titles = {
        "summary": "Summary",
        "groups": "Per-group metrics",
        "baselines": "Baselines",
        "plots": "Plots",
        "policy": "Policy",
        "samples": "Samples",
        "search": "Search",
        "decisions": "Decisions",
        "config": "Configuration",
    }
    nav = "".join(
        f'<a href="#{key}">{title}</a>'
        for key, title in titles.items()
        if any(s.startswith(f'<section id="{key}"') for s in sections)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>evoaug report: {e(report.label)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>evoaug fairness report: {e(report.label)}</h1>"
        f'<p class="sub">{e(report.run.run_dir)}</p><nav>{nav}</nav>'
        + "".join(sections)
        + f"<footer>Generated by evoaug {e(__version__)}. Self-contained: no scripts, "
        "no external resources.</footer></main></body></html>\n"
    )
