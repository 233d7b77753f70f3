import json
import subprocess
import sys
from pathlib import Path

import pytest

from evoaug import Policy, search
from evoaug.cli import main

RECIPES = Path(__file__).parents[1] / "recipes"


def test_help_lists_subcommands(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ("fit", "validate", "test", "predict", "report", "policy", "ops"):
        assert name in out


def test_fit_help_is_lightning_cli(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.argv", ["evoaug"])
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--trainer" in out and "--test_after_fit" in out


def test_one_epoch_digits_fit_writes_a_run_dir(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.argv", ["evoaug"])
    status = main([
        "fit", "--config", str(RECIPES / "digits.yaml"),
        "--trainer.max_epochs", "2",
        "--trainer.limit_train_batches", "4",
        "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--trainer.callbacks.init_args.population_size", "4",
        "--trainer.callbacks.init_args.lookahead_steps", "3",
        "--trainer.callbacks.init_args.train_probe_size", "64",
        "--trainer.callbacks.init_args.val_probe_size", "40",
        "--trainer.callbacks.init_args.warmup_epochs", "1",
        "--trainer.callbacks.init_args.min_generations", "1",
        "--report", "false",
    ])  # fmt: skip
    assert status == 0
    run_dir = tmp_path / "digits" / "version_0" / "evoaug"
    records, _ = search.read_history(run_dir / "history.jsonl")
    assert len(records) == 4
    assert Policy.from_yaml(run_dir / "best_policy.yaml")
    assert (run_dir / "test_predictions.csv").is_file()
    assert f"evoaug: run directory {run_dir}" in capsys.readouterr().out
    # run.json says how the run was started, though sys.argv is cut short while it runs.
    command = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["command"]
    assert command.startswith(f"evoaug fit --config {RECIPES / 'digits.yaml'} ")
    assert command.endswith("--report false")


def test_unknown_recipe_key_exits_nonzero_naming_it(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.argv", ["evoaug"])
    bad = tmp_path / "bad.yaml"
    bad.write_text((RECIPES / "digits.yaml").read_text().replace("max_epochs:", "max_epoch:"))
    assert main(["fit", "--config", str(bad)]) != 0
    assert "max_epoch" in capsys.readouterr().err


def test_missing_dataset_files_exit_with_the_path(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.argv", ["evoaug"])
    status = main([
        "fit", "--config", str(RECIPES / "cifar10.yaml"),
        "--data.init_args.root", str(tmp_path / "nowhere"),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false", "--trainer.accelerator", "cpu",
        "--trainer.precision", "32-true",
    ])  # fmt: skip
    assert status != 0
    err = capsys.readouterr().err
    assert "cifar-10-batches-py" in err and "nowhere" in err
    assert "Traceback" not in err


def test_policy_show_and_export(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["policy", "show", "autoaugment-svhn"]) == 0
    assert "Policy 'autoaugment-svhn': 25 sub-policies" in capsys.readouterr().out
    out = tmp_path / "p.json"
    assert main(["policy", "export", "autoaugment-svhn", "--to", "json", "--out", str(out)]) == 0
    assert Policy.from_json(out) == Policy.preset("autoaugment-svhn")
    assert main(["policy", "show", str(tmp_path / "missing.yaml")]) == 2
    assert "policy file not found" in capsys.readouterr().err
    assert main(["policy", "show", "autoaugment-cifar"]) == 2  # a mistyped preset name
    assert "a preset name ['identity', 'randaugment'" in capsys.readouterr().err
    # An output path that cannot be written: an error message and status 2, not a traceback.
    (tmp_path / "adir").mkdir()
    assert main(["policy", "export", "identity", "--out", str(tmp_path / "adir")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evoaug: error: ") and "adir" in err


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("evoaug")
    proc = subprocess.run([str(exe), "ops"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "ShearX" in proc.stdout and "0.99" in proc.stdout


def test_the_fit_ends_with_the_result_the_report_holds(tmp_path: Path) -> None:
    from evoaug._lightning_cli import result_lines
    from evoaug.report import write_report
    from evoaug.report._examples import example_run

    _, _, report_json = write_report(example_run(tmp_path), n_bootstrap=50)
    metrics = json.loads(report_json.read_text(encoding="utf-8"))["metrics"]
    accuracy, worst = metrics["overall"]["accuracy"], metrics["worst_group"]
    low, high = worst["accuracy_ci"]
    assert result_lines(report_json) == [
        f"evoaug: test accuracy {accuracy:.1%} on {metrics['overall']['count']} images",
        f"evoaug: worst group (sensitive attribute) 'minority': {worst['accuracy']:.1%} "
        f"[{low:.1%}, {high:.1%}]",
    ]
    assert result_lines(tmp_path / "missing.json") == []


def test_lightning_tips_and_its_leafspec_warning_are_not_shown(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging
    import warnings

    import pytorch_lightning as pl

    from evoaug._lightning_cli import quiet_lightning_notices

    with caplog.at_level(logging.INFO):
        pl.Trainer(logger=False, enable_progress_bar=False)
    assert "Tip:" in caplog.text  # Lightning advertises...
    caplog.clear()
    with caplog.at_level(logging.INFO), quiet_lightning_notices():
        pl.Trainer(logger=False, enable_progress_bar=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with quiet_lightning_notices():
                warnings.warn(
                    "`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1
                )
    assert "Tip:" not in caplog.text  # ...not inside `evoaug fit`
    assert "GPU available" in caplog.text  # the rest of its messages stay
    assert caught == []
