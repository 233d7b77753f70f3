"""Missing files, one group, empty history, bad paths: a useful report or a clear error."""

from __future__ import annotations

import json

import pytest

from evoaug import ConfigError
from evoaug.report import _plots, build_report, write_report


def test_missing_directory_is_an_error(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="run directory not found: .*nope"):
        build_report(tmp_path / "nope")


def test_the_log_dir_above_the_run_dir_is_accepted(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run(generations=0, samples=False)
    assert build_report(run_dir.parent, n_bootstrap=0).run.run_dir == run_dir


def test_neither_predictions_nor_history_is_an_error(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run(generations=0)
    (run_dir / "test_predictions.csv").unlink()
    with pytest.raises(ConfigError, match=r"neither test predictions \('test_predictions.csv'\)"):
        write_report(run_dir)
    assert not (run_dir / "report.html").exists()


def test_missing_predictions_still_reports_the_search(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run()
    (run_dir / "test_predictions.csv").unlink()
    (run_dir / "samples.pt").unlink()
    html_path, _, json_path = write_report(run_dir, n_bootstrap=50)
    page = html_path.read_text()
    assert "test_predictions.csv is missing" in page
    assert "No test predictions" in page
    assert "no samples.pt or samples.npz" in page
    data = json.loads(json_path.read_text())
    assert data["metrics"] is None and data["search"]["candidates"] == 18


def test_empty_history_still_reports_the_groups(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run(generations=0)
    html_path, md_path, json_path = write_report(run_dir, n_bootstrap=50)
    page = html_path.read_text()
    assert "history.jsonl has no evaluated candidates" in page
    assert "Not shown: No evaluated candidate" in page
    assert "No chosen policy" in page
    assert json.loads(json_path.read_text())["search"] is None
    assert "Pareto front: not shown" in md_path.read_text()


def test_one_group_says_differences_need_two(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run(group_names=("everyone",), accuracy=(0.9,), group_sizes=(200,))
    html_path, _, json_path = write_report(run_dir, n_bootstrap=50)
    data = json.loads(json_path.read_text())
    assert data["metrics"]["difference"]["accuracy"] is None
    assert data["metrics"]["ratio"]["accuracy"] is None
    assert "Only one group ('everyone')" in data["findings"][0] + data["findings"][1]
    assert "Only one group: differences and ratios" in html_path.read_text()


def test_groups_from_classes_when_the_group_column_is_empty(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run(num_classes=3, generations=0, samples=False)
    lines = (run_dir / "test_predictions.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    text = lines[0] + "\n" + "".join(f"{r[0]},{r[1]},{r[2]},,{r[4]}\n" for r in rows)
    (run_dir / "test_predictions.csv").write_text(text)
    (run_dir / "test_meta.json").unlink()
    report = build_report(run_dir, n_bootstrap=0)
    assert report.groups_source == "classes"
    assert report.metrics is not None
    assert list(report.metrics.group_names.values()) == ["class 0", "class 1", "class 2"]
    assert any("test_meta.json is missing" in n for n in report.notes)


def test_torn_and_corrupt_files_become_notes(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run()
    with (run_dir / "history.jsonl").open("a") as handle:
        handle.write('{"generation": 3, "objec')
    (run_dir / "pareto.yaml").write_text("- [unclosed\n")
    (run_dir / "best_policy.yaml").write_text("format_version: 1\nsub_policies: 3\n")
    (run_dir / "timeline.jsonl").write_text('{"epoch": 1}\nnot json\n')
    (run_dir / "run.json").write_text("[1, 2]")
    report = build_report(run_dir, n_bootstrap=0)
    notes = "\n".join(report.notes)
    assert "line 19 is incomplete" in notes
    assert "pareto.yaml could not be read" in notes
    assert "best_policy.yaml is not a valid policy file" in notes
    assert "timeline.jsonl: line 2 is not valid JSON" in notes
    assert "run.json must hold a JSON object, got list" in notes
    assert report.search is not None and not report.search.front_from_file
    assert report.search.n_candidates == 18


def test_bad_predictions_file_is_a_note(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run()
    (run_dir / "test_predictions.csv").write_text("index,y_true,y_pred\n0,1,cat\n")
    report = build_report(run_dir, n_bootstrap=0)
    assert report.metrics is None
    assert any("line 2: `y_pred` must be an integer, got 'cat'" in n for n in report.notes)


def test_out_must_be_html(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run(generations=0, samples=False)
    with pytest.raises(ConfigError, match=r"`out` must be a path ending in '.html'"):
        write_report(run_dir, out=run_dir / "report.md")


def test_baselines_must_be_a_list(rt):  # type: ignore[no-untyped-def]
    run_dir = rt.run(generations=0, samples=False)
    with pytest.raises(ConfigError, match="`baselines` must be a list of run directories"):
        build_report(run_dir, baselines=str(run_dir))  # type: ignore[arg-type]


def test_a_rendering_failure_leaves_no_partial_file(rt, monkeypatch):  # type: ignore[no-untyped-def]
    run_dir = rt.run(generations=2)

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(_plots, "pareto_plot", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        write_report(run_dir, n_bootstrap=50)
    leftovers = sorted(
        p.name for p in run_dir.iterdir() if p.name.startswith((".report", "report"))
    )
    assert leftovers == []
    # an earlier report stays whole
    monkeypatch.undo()
    html_path, _, _ = write_report(run_dir, n_bootstrap=50)
    before = html_path.read_bytes()
    monkeypatch.setattr(_plots, "samples_plot", broken)
    with pytest.raises(RuntimeError, match="plotting failed"):
        write_report(run_dir, n_bootstrap=50)
    assert html_path.read_bytes() == before
