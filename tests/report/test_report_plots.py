"""Figures on edge cases: one objective, failures only, empty timelines, many or odd names."""

from __future__ import annotations

import base64
import math

import numpy as np
import pytest

from evoaug.report import GroupMetrics
from evoaug.report._plots import (
    group_accuracy_plot,
    hypervolume_plot,
    pareto_plot,
    samples_plot,
    timeline_plot,
)
from evoaug.report._search import summarize_search

PNG = b"\x89PNG\r\n\x1a\n"


def _png(text: str) -> bytes:
    data = base64.b64decode(text, validate=True)
    assert data.startswith(PNG)
    return data


def _history(names, generations=3, per=4, seed=0, fail_every=0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    records = []
    for g in range(generations):
        for i in range(per):
            failed = fail_every and i % fail_every == 0
            records.append(
                {
                    "generation": g,
                    "objectives": None if failed else {n: float(rng.random()) for n in names},
                    "failure": "NaN loss" if failed else None,
                }
            )
    return records


@pytest.mark.parametrize("names", [("accuracy",), ("accuracy", "fairness"), ("a", "b", "c", "d")])
def test_search_plots_for_any_number_of_objectives(names):  # type: ignore[no-untyped-def]
    summary = summarize_search(_history(names, fail_every=3), objectives=names)
    assert summary is not None and summary.objectives == names
    assert summary.n_failed == 6 and summary.failures["NaN loss"] == 6  # i = 0, 3 of 4 per gen
    assert summary.front.shape[1] == len(names)
    assert list(summary.hypervolume) == sorted(summary.hypervolume)  # the archive only grows
    assert 0 < summary.hypervolume[-1] <= 1.1 ** len(names)
    _png(pareto_plot(summary))
    _png(hypervolume_plot(summary))


def test_hypervolume_matches_pymoo_on_the_whole_history():  # type: ignore[no-untyped-def]
    from pymoo.indicators.hv import HV

    records = _history(("x", "y"), generations=2, per=6, seed=1)
    summary = summarize_search(records)
    values = np.array([[r["objectives"]["x"], r["objectives"]["y"]] for r in records])
    low, high = values.min(0), values.max(0)
    expected = HV(ref_point=np.full(2, 1.1))((high - values) / (high - low))
    assert summary.hypervolume[-1] == pytest.approx(expected)


def test_failures_only_and_unknown_configured_objectives():  # type: ignore[no-untyped-def]
    records = [{"generation": 0, "objectives": None, "failure": "boom"}]
    assert summarize_search([]) is None
    summary = summarize_search(records, objectives=("accuracy",))
    assert summary is not None and summary.objectives == () and summary.hypervolume == (0.0,)
    assert not summary.finite.any() and summary.front.shape[0] == 0
    # A pareto.yaml beside a history without objectives (edited by hand) does not crash it.
    summary = summarize_search(records * 2, pareto=[{"objectives": {}}])
    assert summary is not None and summary.front.shape[0] == 0
    summary = summarize_search(_history(("accuracy",)), objectives=("accuracy", "not_in_history"))
    assert summary.objectives == ("accuracy",)


def test_timeline_plot_with_missing_values():  # type: ignore[no-untyped-def]
    _png(timeline_plot([0], {"accuracy": [math.nan]}, []))
    _png(timeline_plot([0, 1, 2], {}, [1]))


def test_group_plot_with_many_and_odd_names_is_deterministic():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 15, 600)
    names = {g: f"$\\frac{{{g}}}{{0}}$ {'x' * g * 3} \u4e2d" for g in range(15)}
    m = GroupMetrics(y_true=y, y_pred=y, groups=y, group_names=names, n_bootstrap=20)
    first = _png(group_accuracy_plot([("run", m), ("base", m)]))
    assert first == _png(group_accuracy_plot([("run", m), ("base", m)]))


def test_samples_plot_gray_and_colour():  # type: ignore[no-untyped-def]
    gray = np.zeros((3, 1, 8, 8), np.uint8)
    colour = np.full((2, 3, 8, 8), 200, np.uint8)
    _png(samples_plot([("a", gray, gray), ("b", colour, colour)]))
