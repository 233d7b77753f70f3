"""End to end on digits: `evoaug search` with a 2-worker process pool, then `evoaug report`."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

from evoaug import EvoAugCallback, Policy
from evoaug.cli import main
from evoaug.offline import RecipeTrainer
from evoaug.report import build_report
from evoaug.search import read_history, read_pareto


@pytest.mark.slow
def test_two_worker_pool_search_writes_a_run_directory_the_report_reads(
    tiny_recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "search"
    status = main([
        "search", "--config", str(tiny_recipe), "--generations", "2", "--population", "4",
        "--budget-epochs", "1", "--workers", "2", "--out", str(out),
    ])  # fmt: skip
    assert status == 0
    run_dir = out / "evoaug"
    assert f"evoaug: run directory {run_dir}" in capsys.readouterr().out

    records, warnings = read_history(run_dir / "history.jsonl")
    assert not warnings
    assert sorted(r["candidate"] for r in records) == [
        f"g{g:04d}-c{i:03d}" for g in range(2) for i in range(4)
    ]
    assert all(r["failure"] is None and r["epoch"] == 1 for r in records)
    assert all(set(r["objectives"]) == {"accuracy", "difficulty", "diversity", "fairness"}
               for r in records)  # fmt: skip
    identity = next(r for r in records if r["candidate"] == "g0000-c000")
    assert set(Policy.from_dict(identity["policy"]).ops) == {"Identity"}
    assert identity["objectives"]["difficulty"] == 0.0  # no augmentation, no loss change
    # Two candidates in flight on a pool of two: both worker processes train, this one never.
    workers = {r["worker"] for r in records}
    assert len(workers) == 2, workers
    assert {w.rsplit(":", 1)[0] for w in workers} == {socket.gethostname()}
    assert str(os.getpid()) not in {w.rsplit(":", 1)[1] for w in workers}
    assert all(r["predicted"] is not None for r in records if r["generation"] == 1)

    front = read_pareto(run_dir / "pareto.yaml")
    best = Policy.from_yaml(run_dir / "best_policy.yaml")
    assert front and any(policy.sub_policies == best.sub_policies for policy, _ in front)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["offline"]["generations_done"] == 2 and info["offline"]["evaluations"] == 8
    assert info["groups_source"] == "classes"
    assert len((run_dir / "surrogate.jsonl").read_text().splitlines()) == 1
    assert (out / "config.yaml").is_file()
    assert not (tmp_path / "never-written").exists()  # the recipe's logger is not used

    report = build_report(out, n_bootstrap=20)
    assert report.search is not None and len(report.run.history) == 8
    assert report.run.best_policy is not None

    # The policy found offline seeds the online callback.
    assert EvoAugCallback(initial_policy=str(run_dir / "best_policy.yaml")).best_policy == best


def test_one_candidate_trains_from_the_recipe_and_leaves_global_state_alone(
    tiny_recipe: Path,
) -> None:
    lower = RecipeTrainer(tiny_recipe, budget_epochs=1)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    deterministic = torch.are_deterministic_algorithms_enabled()
    values = lower(Policy.preset("identity"), seed=0)
    assert torch.equal(torch.rand(3), expected)
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert list(values) == ["accuracy", "difficulty", "diversity", "fairness"]
    assert values["difficulty"] == 0.0 and values["diversity"] == 0.0
    assert 0.0 <= values["fairness"] <= values["accuracy"] <= 1.0


def test_candidate_config_trains_the_budget_with_the_policy_and_nothing_else(
    tiny_recipe: Path, tmp_path: Path
) -> None:
    lower = RecipeTrainer(tiny_recipe, budget_epochs=3, seed=7)
    config = lower.candidate_config(tmp_path, seed=7, policy_file=tmp_path / "p.yaml")
    trainer = config["trainer"]
    assert config["seed_everything"] == 7 and trainer["max_epochs"] == 3
    assert trainer["logger"] is False and trainer["enable_checkpointing"] is False
    assert trainer["devices"] == 1 and trainer["default_root_dir"] == str(tmp_path)
    assert trainer["limit_train_batches"] == 6  # the recipe's own settings stay
    [callback] = trainer["callbacks"]
    assert callback["init_args"]["search"] is False
    assert callback["init_args"]["initial_policy"] == str(tmp_path / "p.yaml")
    assert callback["init_args"]["n_subpolicies"] == 2
    assert lower.config["trainer"]["max_epochs"] == 30  # the recipe itself is not modified
    assert lower.space.n_subpolicies == 2 and lower.population_size == 4
    assert [p.name for p in lower.initial_policies] == ["identity"]


def test_ctrl_c_during_a_candidate_is_a_keyboard_interrupt_again(
    tiny_recipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning answers Ctrl-C with sys.exit(1) and then ignores SIGINT: a serial search
    must stop as on any Ctrl-C (the command then says how to resume, status 130)."""
    import signal

    from evoaug.models import Classifier

    def interrupted(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(Classifier, "training_step", interrupted)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        RecipeTrainer(tiny_recipe, budget_epochs=1)(Policy.preset("identity"), seed=0)
    assert signal.getsignal(signal.SIGINT) == before


def test_a_changed_recipe_changes_the_fingerprint_a_resume_compares(
    tiny_recipe: Path, tmp_path: Path
) -> None:
    from evoaug.offline import OfflineSearch
    from evoaug.offline._records import FIXED_SETTINGS

    other = tmp_path / "other.yaml"
    other.write_text(tiny_recipe.read_text().replace("lr: 0.1", "lr: 0.5"))
    assert other.read_text() != tiny_recipe.read_text()
    first, again = (
        RecipeTrainer(tiny_recipe, budget_epochs=1),
        RecipeTrainer(tiny_recipe, budget_epochs=1),
    )
    assert first.fingerprint == again.fingerprint
    assert RecipeTrainer(other, budget_epochs=1).fingerprint != first.fingerprint
    search = OfflineSearch(first, out=tmp_path / "out", generations=1)
    assert search.settings()["recipe_sha256"] == first.fingerprint
    assert "recipe_sha256" in FIXED_SETTINGS  # a resume with another recipe is refused
