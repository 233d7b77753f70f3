"""The report's policy section says how the chosen policy samples and warps."""

from __future__ import annotations

from evoaug import Policy
from evoaug.report import write_report

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
