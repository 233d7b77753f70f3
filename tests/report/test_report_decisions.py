import json

from evoaug import Policy
from evoaug.report import build_report, render
from evoaug.report._examples import example_run
from evoaug.search import Advantage, EvidenceRule


def test_the_report_shows_every_decision_with_its_evidence(tmp_path) -> None:
    run_dir = example_run(tmp_path)
    identity, invert = Policy.preset("identity"), Policy.from_genes([[("Invert", 0.5, 0.0)]])
    invert = Policy(invert.sub_policies, name="evoaug credit: Invert")
    rule = EvidenceRule()
    proposals = {"evoaug credit: Invert": {"incumbent": Advantage(0.08, 0.05, 256)}}
    kept = rule.keep(identity, proposals).to_dict()
    changed = {
        **kept,
        "chosen": invert.to_dict(),
        "challenger": invert.to_dict(),
        "changed": True,
        "reason": "evoaug credit: Invert passed the guard",
        "guard": {"incumbent": Advantage(0.12, 0.04, 64).to_dict()},
    }
    lines = [{"generation": 0, "epoch": 2, **kept}, {"generation": 1, "epoch": 5, **changed}]
    (run_dir / "decisions.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = build_report(run_dir, n_bootstrap=0)
    assert [d["changed"] for d in report.run.decisions] == [False, True]
    html, markdown, data = render(report)
    assert '<section id="decisions">' in html and "2 decisions, 1 changed the policy" in html
    assert "+0.080 (bound +0.050)" in html and "+0.120 (bound +0.040)" in html
    assert "evoaug credit: Invert passed the guard" in markdown
    assert "| 1 | 5 | identity | evoaug credit: Invert | +0.080 (bound +0.050)" in markdown
    assert json.loads(data)["decisions"][1]["guard"]["incumbent"]["lower"] == 0.04


def test_a_run_without_decisions_has_no_section_and_no_note(tmp_path) -> None:
    report = build_report(example_run(tmp_path), n_bootstrap=0)
    html, markdown, _ = render(report)
    assert 'id="decisions"' not in html and "## Decisions" not in markdown
    assert not any("decisions" in note for note in report.notes)
