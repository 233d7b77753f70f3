"""Comparison with baseline runs: side-by-side numbers, paired changes, plain-words findings."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from evoaug.report import build_report, write_report


def _accuracy(run_dir, group=None):  # type: ignore[no-untyped-def]
    rows = [line.split(",") for line in (run_dir / "test_predictions.csv").read_text().split()[1:]]
    y = np.array([[int(r[1]), int(r[2]), int(r[3])] for r in rows])
    keep = np.ones(len(y), bool) if group is None else y[:, 2] == group
    return float(np.mean(y[keep, 0] == y[keep, 1]))


def test_paired_comparison_against_a_baseline(rt):  # type: ignore[no-untyped-def]
    baseline = rt.run(accuracy=(0.95, 0.55), generations=0, samples=False)
    run = rt.run(accuracy=(0.93, 0.9))
    html_path, md_path, json_path = write_report(run, baselines=[baseline], n_bootstrap=300)
    data = json.loads(json_path.read_text())
    (entry,) = data["baselines"]
    assert entry["label"] == "version_0" and data["run"]["label"] == "version_1"
    comparison = entry["comparison"]
    assert comparison["paired"] is True and comparison["same_groups"] is True
    worst = comparison["worst_group_accuracy"]
    assert worst["baseline"] == pytest.approx(_accuracy(baseline, 1))
    assert worst["run"] == pytest.approx(min(_accuracy(run, 0), _accuracy(run, 1)))
    assert worst["change"] == pytest.approx(worst["run"] - worst["baseline"])
    low, high = worst["change_ci"]
    assert 0 < low <= worst["change"] <= high  # a large, clear improvement
    overall = comparison["overall_accuracy"]
    assert overall["change"] == pytest.approx(_accuracy(run) - _accuracy(baseline))
    assert entry["metrics"]["overall"]["accuracy"] == pytest.approx(_accuracy(baseline))
    finding = data["findings"][0]
    assert finding.startswith("Against baseline 'version_0': worst-group accuracy rose from ")
    assert f"{100 * worst['baseline']:.1f}% to {100 * worst['run']:.1f}%" in finding
    assert "overall accuracy changed by" in finding and "narrowed" in finding
    page = html_path.read_text()
    assert "Side by side" in page and "Change against version_0" in page
    assert "version_1 (this run)" in page
    assert "### Change against version\\_0" in md_path.read_text()


def test_unpaired_baseline_and_baseline_without_predictions(rt):  # type: ignore[no-untyped-def]
    other = rt.run(accuracy=(0.9, 0.8), group_sizes=(200, 50), seed=5, generations=0)
    empty = rt.run(generations=1, samples=False)
    (empty / "test_predictions.csv").unlink()
    run = rt.run(generations=1)
    report = build_report(run, baselines=[other, empty], n_bootstrap=200)
    first, second = report.baselines
    assert first.comparison is not None and not first.comparison.paired
    assert second.metrics is None and second.comparison is None
    assert any("Baseline 'version_1' has no test predictions" in n for n in report.notes)
    assert "independent resamples" in report.findings[0]
    assert report.to_dict()["baselines"][1]["comparison"] is None


def test_same_labels_are_made_unique(rt, tmp_path):  # type: ignore[no-untyped-def]
    from evoaug.report._examples import example_run

    run = example_run(tmp_path / "a", generations=0, samples=False)
    base = example_run(tmp_path / "b", generations=0, samples=False)
    report = build_report(run, baselines=[base], n_bootstrap=0)
    assert report.label == "version_0" and report.baselines[0].label == "version_0 (2)"


def test_every_interval_label_says_the_confidence_asked_for(rt):  # type: ignore[no-untyped-def]
    baseline = rt.run(accuracy=(0.95, 0.55), generations=0, samples=False)
    run = rt.run(accuracy=(0.93, 0.9))
    html_path, md_path, json_path = write_report(
        run, baselines=[baseline], n_bootstrap=200, confidence=0.5
    )
    data = json.loads(json_path.read_text())
    pattern = r"\d+(?:\.\d+)?% (?:CI|percentile intervals|intervals)"
    for text in (html_path.read_text(), md_path.read_text(), " ".join(data["findings"])):
        labels = set(re.findall(pattern, text))
        assert labels and all(label.startswith("50% ") for label in labels), labels
