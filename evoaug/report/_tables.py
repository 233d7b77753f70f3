"""The report's tables as rows of plain text cells, shared by the HTML and Markdown renderers.

Cells are unescaped text; each renderer escapes every cell (they hold group, class, op and
policy names, which are user data).
"""

from __future__ import annotations

from typing import Any

from evoaug.report._compare import Change
from evoaug.report._findings import level, pct
from evoaug.report._metrics import GroupMetrics, Interval
from evoaug.report._report import Report

__all__ = [
    "Table",
    "change_table",
    "decision_table",
    "group_table",
    "side_by_side_table",
    "summary_table",
]

Table = tuple[list[str], list[list[str]]]  # header, rows

_TITLES = {
    "count": "Count",
    "accuracy": "Accuracy",
    "error_rate": "Error rate",
    "selection_rate": "Selection rate",
    "true_positive_rate": "TPR",
    "false_positive_rate": "FPR",
}


def _with_ci(value: float | None, ci: Interval | None) -> str:
    if value is None:
        return "n/a"
    return pct(value) if ci is None else f"{pct(value)} [{pct(ci[0])}, {pct(ci[1])}]"


def _gap(value: float | None, ci: Interval | None) -> str:
    if value is None:
        return "n/a"
    text = f"{100 * value:.1f} pts"
    return text if ci is None else f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _ratio(value: float | None, ci: Interval | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if ci is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def group_table(metrics: GroupMetrics) -> Table:
    """One row per group, then the overall row; rates with their intervals."""
    header = ["Group", *(_TITLES[m] for m in metrics.metric_names)]
    rows = []
    for g in metrics.group_ids:
        name = metrics.group_names[g]
        if g == metrics.worst_group and len(metrics.group_ids) > 1:
            name += " (worst)"
        cells = [name]
        for m in metrics.metric_names:
            value = metrics.by_group[g][m]
            if m == "count":
                cells.append(str(int(value or 0)))
            else:
                cells.append(_with_ci(value, metrics.ci_by_group[g].get(m)))
        rows.append(cells)
    overall = ["All samples"]
    for m in metrics.metric_names:
        value = metrics.overall[m]
        overall.append(
            str(int(value or 0)) if m == "count" else _with_ci(value, metrics.ci_overall.get(m))
        )
    rows.append(overall)
    return header, rows


def summary_table(metrics: GroupMetrics) -> Table:
    """Across groups: worst group, and per rate the difference and ratio between groups."""
    rows = [
        [
            "Worst-group accuracy",
            f"{_with_ci(metrics.worst_group_accuracy, metrics.ci_worst_group_accuracy)} "
            f"({metrics.group_names[metrics.worst_group]})",
        ]
    ]
    for m in metrics.metric_names[1:]:
        title = _TITLES[m]
        rows.append(
            [
                f"{title}: difference (max - min)",
                _gap(metrics.difference[m], metrics.ci_difference.get(m)),
            ]
        )
        rows.append(
            [f"{title}: ratio (min / max)", _ratio(metrics.ratio[m], metrics.ci_ratio.get(m))]
        )
    for name, value in metrics.binary_fairness().items():
        rows.append(
            [name.replace("_", " ").capitalize(), "n/a" if value is None else f"{value:.3f}"]
        )
    return ["Quantity", f"Value [{level(metrics.confidence)} CI]"], rows


def side_by_side_table(report: Report) -> Table:
    """Accuracy per group and the summary quantities, one column per run (this run first)."""
    runs = [(report.label, report.metrics)] + [(b.label, b.metrics) for b in report.baselines]
    present = [(label, m) for label, m in runs if m is not None]
    names: list[str] = []
    for _, m in present:
        names.extend(n for n in m.group_names.values() if n not in names)
    header = [
        "Accuracy",
        *(f"{label}" + (" (this run)" if i == 0 else "") for i, (label, _) in enumerate(present)),
    ]
    rows = []
    for name in names:
        row = [name]
        for _, m in present:
            by_name = {m.group_names[g]: g for g in m.group_ids}
            g = by_name.get(name)
            row.append(
                "-"
                if g is None
                else _with_ci(m.by_group[g]["accuracy"], m.ci_by_group[g].get("accuracy"))
            )
        rows.append(row)
    rows.append(
        [
            "All samples",
            *(_with_ci(m.overall["accuracy"], m.ci_overall.get("accuracy")) for _, m in present),
        ]
    )
    rows.append(
        [
            "Worst group",
            *(
                f"{_with_ci(m.worst_group_accuracy, m.ci_worst_group_accuracy)} "
                f"({m.group_names[m.worst_group]})"
                for _, m in present
            ),
        ]
    )
    rows.append(
        [
            "Difference (max - min)",
            *(_gap(m.difference["accuracy"], m.ci_difference.get("accuracy")) for _, m in present),
        ]
    )
    rows.append(
        [
            "Ratio (min / max)",
            *(_ratio(m.ratio["accuracy"], m.ci_ratio.get("accuracy")) for _, m in present),
        ]
    )
    return header, rows


def _change_row(title: str, change: Change, as_points: bool) -> list[str]:
    ci = "" if change.ci is None else f" [{100 * change.ci[0]:+.1f}, {100 * change.ci[1]:+.1f}]"
    fmt = (lambda v: f"{100 * v:.1f} pts") if as_points else pct
    return [title, fmt(change.before), fmt(change.after), f"{100 * change.change:+.1f} pts{ci}"]


def change_table(report: Report) -> list[tuple[str, Table]]:
    """Per baseline with a comparison: the changes of the headline quantities."""
    out = []
    for b in report.baselines:
        c = b.comparison
        if c is None:
            continue
        rows = [
            _change_row("Overall accuracy", c.overall_accuracy, False),
            _change_row("Worst-group accuracy", c.worst_group_accuracy, False),
            _change_row("Accuracy difference (max - min)", c.accuracy_difference, True),
        ]
        kind = "paired" if c.paired else "independent"
        header = [
            "Quantity",
            f"{b.label} (baseline)",
            f"{report.label} (this run)",
            f"Change [{level(c.confidence)} CI, {kind}]",
        ]
        out.append((b.label, (header, rows)))
    return out


def _advantage(value: object) -> str:
    """``+0.123 (bound +0.045)`` from a decision record's ``{mean, lower, n}``."""
    if not isinstance(value, dict) or not isinstance(value.get("mean"), (int, float)):
        return "n/a"
    lower = value.get("lower")
    bound = f" (bound {lower:+.3f})" if isinstance(lower, (int, float)) else ""
    return f"{value['mean']:+.3f}{bound}"


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _policy_name(value: object) -> str:
    return str(value.get("name") or "custom") if isinstance(value, dict) else "none"


def decision_table(report: Report) -> Table:
    """One row per swap decision (``decisions.jsonl``): who met whom, the evidence, the outcome.

    The proposal columns are the challenger's gradient-alignment advantage over the incumbent
    and over no augmentation; the guard columns its look-ahead decision-score advantage; each
    with its lower confidence bound.
    """
    header = [
        "Generation", "Epoch", "Incumbent", "Challenger", "Proposal vs incumbent",
        "Proposal vs none", "Guard vs incumbent", "Guard vs none", "Outcome", "Why",
    ]  # fmt: skip
    rows = []
    for d in report.run.decisions:
        challenger = d.get("challenger")
        proposals = _mapping(d.get("proposals"))
        evidence = _mapping(proposals.get(_policy_name(challenger))) if challenger else {}
        guard = _mapping(d.get("guard"))
        rows.append(
            [
                str(d.get("generation", "")),
                str(d.get("epoch", "")),
                _policy_name(d.get("incumbent")),
                _policy_name(challenger) if challenger else "none proposed",
                _advantage(evidence.get("incumbent")),
                _advantage(evidence.get("identity")),
                _advantage(guard.get("incumbent")),
                _advantage(guard.get("identity")),
                "changed" if d.get("changed") else "kept",
                str(d.get("reason", "")),
            ]
        )
    return header, rows
