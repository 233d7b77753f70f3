"""report.json's numbers against a MetricFrame computed here, and the bootstrap's behaviour."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, count, selection_rate
from sklearn.metrics import accuracy_score

from evoaug.report import Comparison, GroupMetrics, build_report, write_report


def _saved(run_dir):  # type: ignore[no-untyped-def]
    with (run_dir / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    y_true = np.array([int(r["y_true"]) for r in rows])
    y_pred = np.array([int(r["y_pred"]) for r in rows])
    group = np.array([int(r["group"]) for r in rows])
    return y_true, y_pred, group


def _frame(run_dir, binary=False):  # type: ignore[no-untyped-def]
    y_true, y_pred, group = _saved(run_dir)
    metrics = {"count": count, "accuracy": accuracy_score}
    if binary:
        metrics["selection_rate"] = selection_rate
    return MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=group)


@pytest.mark.parametrize("binary", [False, True])
def test_report_json_equals_an_independent_metricframe(rt, binary):  # type: ignore[no-untyped-def]
    run_dir = rt.run(
        group_names=("a", "b", "c"),
        accuracy=(0.9, 0.7, 0.8),
        group_sizes=(120, 60, 40),
        num_classes=2 if binary else 10,
    )
    _, _, json_path = write_report(run_dir, n_bootstrap=200)
    data = json.loads(json_path.read_text())["metrics"]
    frame = _frame(run_dir, binary)
    names = {0: "a", 1: "b", 2: "c"}
    assert data["binary"] is binary
    assert [row["group"] for row in data["by_group"]] == ["a", "b", "c"]
    for row in data["by_group"]:
        g = row["group_id"]
        assert names[g] == row["group"]
        assert row["count"] == frame.by_group.loc[g, "count"]
        assert row["accuracy"] == pytest.approx(frame.by_group.loc[g, "accuracy"], abs=1e-12)
        assert row["error_rate"] == pytest.approx(1 - frame.by_group.loc[g, "accuracy"], abs=1e-12)
        if binary:
            assert row["selection_rate"] == pytest.approx(frame.by_group.loc[g, "selection_rate"])
        low, high = row["accuracy_ci"]
        assert low <= row["accuracy"] <= high
    assert data["overall"]["accuracy"] == pytest.approx(frame.overall["accuracy"], abs=1e-12)
    assert data["overall"]["count"] == 220
    assert data["difference"]["accuracy"] == pytest.approx(
        frame.difference(method="between_groups")["accuracy"], abs=1e-12
    )
    assert data["ratio"]["accuracy"] == pytest.approx(frame.ratio()["accuracy"], abs=1e-12)
    worst = frame.by_group["accuracy"].idxmin()
    assert data["worst_group"]["group"] == names[worst]
    assert data["worst_group"]["accuracy"] == pytest.approx(frame.group_min()["accuracy"])
    if binary:
        assert data["demographic_parity_difference"] == pytest.approx(
            frame.difference()["selection_rate"]
        )


def test_bootstrap_is_seeded_and_stratified():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    groups = np.repeat([0, 1], [300, 100])
    pred = np.where(rng.random(400) < np.where(groups == 0, 0.9, 0.6), y, (y + 1) % 3)
    kwargs = dict(y_true=y, y_pred=pred, groups=groups, n_bootstrap=500)
    a, b = GroupMetrics(seed=1, **kwargs), GroupMetrics(seed=1, **kwargs)
    c = GroupMetrics(seed=2, **kwargs)
    assert a.ci_by_group == b.ci_by_group and a.ci_worst_group_accuracy == b.ci_worst_group_accuracy
    assert a.ci_by_group != c.ci_by_group
    # Stratified resampling keeps group sizes, so a group's interval is the binomial one:
    # about 2 * 1.96 * sqrt(p (1 - p) / n) wide.
    for g, n in ((0, 300), (1, 100)):
        p = a.by_group[g]["accuracy"]
        low, high = a.ci_by_group[g]["accuracy"]
        expected = 2 * 1.96 * np.sqrt(p * (1 - p) / n)
        assert high - low == pytest.approx(expected, rel=0.25)
    assert a.ci_worst_group_accuracy[1] <= a.ci_by_group[0]["accuracy"][1]


def test_undefined_rates_are_none_not_zero():  # type: ignore[no-untyped-def]
    # group 1 has no positives: its TPR is undefined
    m = GroupMetrics(
        y_true=np.array([1, 0, 1, 0, 0, 0]),
        y_pred=np.array([1, 0, 0, 1, 0, 0]),
        groups=np.array([0, 0, 0, 1, 1, 1]),
        binary=True,
        n_bootstrap=100,
    )
    assert m.by_group[1]["true_positive_rate"] is None
    assert m.ci_by_group[1]["true_positive_rate"] is None
    assert m.by_group[0]["true_positive_rate"] == 0.5
    assert m.difference["true_positive_rate"] == 0.0  # only one group defines it
    assert json.dumps(m.to_dict(), allow_nan=False)


def test_no_bootstrap_gives_no_intervals():  # type: ignore[no-untyped-def]
    m = GroupMetrics(
        y_true=np.array([0, 1]), y_pred=np.array([0, 0]), groups=np.array([0, 1]), n_bootstrap=0
    )
    assert m.ci_overall == {} and m.ci_worst_group_accuracy is None
    assert m.to_dict()["worst_group"]["accuracy_ci"] is None


def test_metrics_reject_bad_arrays():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="equal length"):
        GroupMetrics(y_true=np.zeros(3), y_pred=np.zeros(2), groups=np.zeros(3))
    with pytest.raises(ValueError, match="no predictions"):
        GroupMetrics(y_true=np.zeros(0), y_pred=np.zeros(0), groups=np.zeros(0))


def test_paired_comparison_of_identical_runs_is_exactly_zero():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.8, y, (y + 1) % 4)
    groups = rng.integers(0, 2, 200)
    m = GroupMetrics(y_true=y, y_pred=pred, groups=groups, n_bootstrap=200)
    c = Comparison(run=m, baseline=m, n_bootstrap=200)
    assert c.paired and c.same_groups
    assert c.overall_accuracy.change == 0 and c.overall_accuracy.ci == (0.0, 0.0)
    assert not c.worst_group_accuracy.significant


def test_report_rejects_bad_bootstrap_settings(rt):  # type: ignore[no-untyped-def]
    from evoaug import ConfigError

    run_dir = rt.run(generations=0, samples=False)
    with pytest.raises(ConfigError, match="`n_bootstrap` must be an int >= 0, got -1"):
        build_report(run_dir, n_bootstrap=-1)
    with pytest.raises(ConfigError, match="`confidence` must be a float in"):
        build_report(run_dir, confidence=95.0)


def test_same_seed_same_report(rt, tmp_path):  # type: ignore[no-untyped-def]
    run_dir = rt.run()
    first = write_report(run_dir, n_bootstrap=100, seed=3, out=tmp_path / "a" / "r.html")
    second = write_report(run_dir, n_bootstrap=100, seed=3, out=tmp_path / "b" / "r.html")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert [p.name for p in first] == ["r.html", "r.md", "r.json"]


def test_predictions_with_groups_are_named_as_groups_whatever_the_search_used(tmp_path):  # type: ignore[no-untyped-def]
    """run.json's groups_source is the search's; without test_meta.json the report must still
    read a non-empty `group` column as sensitive groups (a LightningModule of your own)."""
    import json

    from evoaug.report import build_report

    run = tmp_path / "evoaug"
    run.mkdir()
    rows = [(0, 0, 0, 0), (1, 1, 1, 0), (2, 2, 2, 0), (3, 0, 1, 1), (4, 1, 1, 1), (5, 2, 0, 1)]
    (run / "test_predictions.csv").write_text(
        "index,y_true,y_pred,group,confidence\n"
        + "".join(f"{i},{t},{p},{g},0.9\n" for i, t, p, g in rows)
    )
    dataset = {"class_names": ["cat", "dog", "bird"], "group_names": ["light", "dark"],
               "sensitive_attribute": "tone"}  # fmt: skip
    (run / "run.json").write_text(json.dumps({"groups_source": "classes", "dataset": dataset}))
    report = build_report(run, n_bootstrap=0)
    assert report.groups_source == "sensitive attribute"
    assert report.sensitive_attribute == "tone"
    assert report.metrics is not None
    by_name = {
        report.metrics.group_names[g]: v["accuracy"] for g, v in report.metrics.by_group.items()
    }
    assert by_name == {"light": 1.0, "dark": pytest.approx(1 / 3)}
