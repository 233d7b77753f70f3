"""Key findings in plain words, from the numbers the report computed.

Sentences are plain text; the renderers escape them (group and policy names are user data).
Accuracies are percentages; changes are percentage points. A change whose bootstrap interval
includes 0 is called "within the bootstrap's noise".
"""

from __future__ import annotations

from collections.abc import Sequence

from evoaug.report._compare import Change, Comparison
from evoaug.report._metrics import GroupMetrics, Interval
from evoaug.report._search import SearchSummary

__all__ = ["SMALL_GROUP", "findings", "level", "pct", "points"]

SMALL_GROUP = 30  # groups with fewer test samples get a warning about their wide intervals


def pct(value: float | None) -> str:
    """``0.9312`` -> ``"93.1%"``; ``None`` -> ``"n/a"``."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def points(value: float) -> str:
    """A change in percentage points with its sign: ``0.021`` -> ``"+2.1 points"``."""
    return f"{100 * value:+.1f} points"


def level(confidence: float) -> str:
    """An interval's level as a percentage: ``0.95`` -> ``"95%"``, ``0.975`` -> ``"97.5%"``."""
    return f"{100 * confidence:.4g}%"


def _ci(ci: Interval | None, confidence: float) -> str:
    return "" if ci is None else f" ({level(confidence)} CI {pct(ci[0])} to {pct(ci[1])})"


def _change_ci(change: Change, confidence: float) -> str:
    if change.ci is None:
        return ""
    low, high = (f"{100 * v:+.1f}" for v in change.ci)
    noise = "" if change.significant else ", within the bootstrap's noise"
    return f" ({level(confidence)} CI {low} to {high}{noise})"


def _verb(change: Change, up: str, down: str) -> str:
    if abs(change.change) < 5e-4:
        return "did not change"
    return up if change.change > 0 else down


def describe_run(metrics: GroupMetrics) -> list[str]:
    """Findings about one run's test predictions."""
    overall_ci = _ci(metrics.ci_overall.get("accuracy"), metrics.confidence)
    out = [
        f"Overall test accuracy is {pct(metrics.overall['accuracy'])}{overall_ci} on "
        f"{len(metrics.y_true)} test samples."
    ]
    names = metrics.group_names
    if len(metrics.group_ids) < 2:
        only = names[metrics.group_ids[0]]
        out.append(
            f"Only one group ('{only}') is present in the test predictions, so differences "
            "between groups cannot be measured."
        )
        return out
    worst = metrics.worst_group
    accuracy = {g: metrics.by_group[g]["accuracy"] or 0.0 for g in metrics.group_ids}
    best = max(metrics.group_ids, key=lambda g: (accuracy[g], -g))
    gap = metrics.difference["accuracy"] or 0.0
    ratio = metrics.ratio["accuracy"]
    out.append(
        f"The worst group is '{names[worst]}' with {pct(accuracy[worst])} accuracy"
        f"{_ci(metrics.ci_worst_group_accuracy, metrics.confidence)}, {100 * gap:.1f} points "
        "below the best group "
        f"'{names[best]}' ({pct(accuracy[best])})"
        + (f"; the accuracy ratio is {ratio:.2f}." if ratio is not None else ".")
    )
    if metrics.binary:
        extra = metrics.binary_fairness()
        dp, eo = extra["demographic_parity_difference"], extra["equalized_odds_difference"]
        out.append(
            "Demographic-parity difference (selection rate) is "
            f"{'n/a' if dp is None else f'{dp:.3f}'}; equalized-odds difference (larger of "
            f"the TPR and FPR gaps) is {'n/a' if eo is None else f'{eo:.3f}'}."
        )
    small = [g for g in metrics.group_ids if (metrics.by_group[g]["count"] or 0) < SMALL_GROUP]
    if small:
        listed = ", ".join(
            f"'{names[g]}' ({int(metrics.by_group[g]['count'] or 0)})" for g in small
        )
        out.append(
            f"Some groups have fewer than {SMALL_GROUP} test samples: {listed}; their "
            "intervals are wide, read their numbers with care."
        )
    return out


def describe_comparison(label: str, comparison: Comparison) -> str:
    """One sentence comparing the run with a baseline."""
    worst, overall, gap = (
        comparison.worst_group_accuracy,
        comparison.overall_accuracy,
        comparison.accuracy_difference,
    )
    level_ = comparison.confidence
    sentence = (
        f"Against baseline '{label}': worst-group accuracy {_verb(worst, 'rose', 'fell')} from "
        f"{pct(worst.before)} to {pct(worst.after)}, {points(worst.change)}"
        f"{_change_ci(worst, level_)}; "
        f"overall accuracy changed by {points(overall.change)}, from {pct(overall.before)} to "
        f"{pct(overall.after)}{_change_ci(overall, level_)}"
    )
    if comparison.same_groups and len(comparison.by_group) > 1:
        sentence += (
            f"; the gap between the best and the worst group "
            f"{_verb(gap, 'widened', 'narrowed')} from {100 * gap.before:.1f} to "
            f"{100 * gap.after:.1f} points"
        )
    sentence += "."
    if not comparison.paired:
        sentence += (
            " The two runs were not tested on the same samples in the same order, so the "
            "intervals come from independent resamples."
        )
    if not comparison.same_groups:
        sentence += " The runs have different groups; compare the per-group tables with care."
    return sentence


def describe_search(search: SearchSummary) -> list[str]:
    """Findings about the search."""
    out = [
        f"The search scored {search.n_candidates} candidates over {len(search.generations)} "
        f"generation{'s' if len(search.generations) != 1 else ''}"
        + (f" ({search.n_failed} failed)" if search.n_failed else "")
        + f"; the final front holds {search.front.shape[0]} "
        f"polic{'ies' if search.front.shape[0] != 1 else 'y'}."
    ]
    if len(search.hypervolume) > 1:
        first, last = search.hypervolume[0], search.hypervolume[-1]
        out.append(
            f"The hypervolume of all candidates so far went from {first:.3f} after the first "
            f"generation to {last:.3f} after the last (normalized space; higher is better)."
        )
    if search.failures:
        reason, n = search.failures.most_common(1)[0]
        out.append(f"Most common failure ({n}x): {reason}")
    return out


def findings(
    *,
    metrics: GroupMetrics | None,
    comparisons: Sequence[tuple[str, Comparison]],
    search: SearchSummary | None,
    policy_name: str | None,
) -> list[str]:
    """All findings, most important first: baselines, the run's groups, the search, the policy.

    Args:
        metrics: The run's per-group metrics, if it has test predictions.
        comparisons: ``(baseline label, comparison)`` for each baseline with predictions.
        search: The search summary, if the run has a history.
        policy_name: Name of the chosen policy, if any.

    """
    out = [describe_comparison(label, c) for label, c in comparisons]
    if metrics is not None:
        out.extend(describe_run(metrics))
    if search is not None:
        out.extend(describe_search(search))
    if policy_name is not None:
        out.append(f"Training ended with the policy '{policy_name}' (table and YAML below).")
    return out
