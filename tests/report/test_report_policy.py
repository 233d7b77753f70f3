"""The report says how the chosen policy samples and warps, and which fairness metric ran."""

from __future__ import annotations

import json

from evoaug import Policy
from evoaug.report import build_report, write_report

NEAREST = "Warps take each output pixel's nearest source pixel"
UNIFORM = "Levels are maxima"


def test_policy_section_names_nearest_warps(rt) -> None:  # type: ignore[no-untyped-def]
    run_dir = rt.run()
    Policy.preset("trivialaugment", interpolation="nearest").to_yaml(run_dir / "best_policy.yaml")
    html_path, md_path, _ = write_report(run_dir, n_bootstrap=20)
    page = html_path.read_text()
    assert NEAREST in page and UNIFORM in page
    assert "interpolation: nearest" in md_path.read_text()  # the policy file, verbatim


def test_policy_section_is_silent_about_the_defaults(rt) -> None:  # type: ignore[no-untyped-def]
    run_dir = rt.run()
    Policy.preset("autoaugment-cifar10").to_yaml(run_dir / "best_policy.yaml")
    html_path, md_path, _ = write_report(run_dir, n_bootstrap=20)
    page = html_path.read_text()
    assert NEAREST not in page and UNIFORM not in page
    assert "interpolation" not in md_path.read_text()


def test_summary_names_the_fairness_metric(rt) -> None:  # type: ignore[no-untyped-def]
    run_dir = rt.run()
    info = json.loads((run_dir / "run.json").read_text())
    assert "fairness" in info["evoaug"]["objectives"]
    assert build_report(run_dir, n_bootstrap=20).summary["Objectives"] == ", ".join(
        info["evoaug"]["objectives"]
    )  # runs written before the metric was recorded
    info["evoaug"]["fairness_metric"] = "worst_group_gain"
    (run_dir / "run.json").write_text(json.dumps(info))
    objectives = build_report(run_dir, n_bootstrap=20).summary["Objectives"]
    assert "fairness (worst_group_gain)" in objectives.split(", ")
    assert len(objectives.split(", ")) == len(info["evoaug"]["objectives"])


def test_policy_files_are_validated_except_for_unregistered_ops() -> None:
    from evoaug.report._load import policy_dict

    gene = {"op": "Rotate", "probability": 0.5, "level": 0.2}
    good = {"format_version": 1, "sub_policies": [[gene]]}
    assert policy_dict(good) is not None
    custom = {"format_version": 1, "sub_policies": [[{**gene, "op": "MyCustomOp"}]]}
    assert policy_dict(custom) == custom  # kept: the op may be registered where it was made
    for bad in (
        {"format_version": 1, "sub_policies": [[{**gene, "probability": 7.5}]]},
        {"format_version": 99, "sub_policies": [[gene]]},
        {"format_version": 1, "sub_policies": []},
        {"format_version": 1, "sub_policies": [[{**gene, "op": "MyCustomOp", "level": -3.0}]]},
        {"format_version": 99, "sub_policies": [[{**gene, "op": "MyCustomOp"}]]},
        {"format_version": 1, "sub_policies": [[]]},
    ):
        assert policy_dict(bad) is None, bad
