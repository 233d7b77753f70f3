"""Bad input: every argument error names the argument, the allowed values and what was given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evoaug import ConfigError
from evoaug.cli import main
from evoaug.offline import OfflineSearch, RecipeTrainer, SyntheticObjectives

LOWER = SyntheticObjectives(("accuracy", "fairness"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"generations": 0}, r"`generations` must be an int >= 1, got 0"),
        ({"generations": -2}, r"`generations` must be an int >= 1, got -2"),
        ({"population_size": 3}, r"`population_size` must be an int >= 4, got 3"),
        ({"surrogate": "xgb"}, r"`surrogate` must be one of \['rf', 'gp', 'none'\], got 'xgb'"),
        ({"pool_factor": 0.5}, r"`pool_factor` must be a number >= 1, got 0.5"),
        ({"pool_factor": float("nan")}, r"`pool_factor` must be a number >= 1, got nan"),
        ({"keep_fraction": 0}, r"`keep_fraction` must be a number in \(0, 1\], got 0"),
        ({"keep_fraction": 1.5}, r"`keep_fraction` must be a number in \(0, 1\], got 1.5"),
        ({"max_attempts": 0}, r"`max_attempts` must be an int >= 1, got 0"),
        ({"seed": -1}, r"`seed` must be an int >= 0, got -1"),
        ({"selection": "best"}, r"`selection` must be one of"),
    ],
)
def test_bad_search_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"out": tmp_path, "generations": 2, **kwargs}
    with pytest.raises(ConfigError, match=message):
        OfflineSearch(LOWER, **settings)


def test_a_lower_level_must_be_callable_with_objectives(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`lower` must be callable as lower\(policy, seed=...\)"):
        OfflineSearch(object(), out=tmp_path, generations=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("budget", "message"),
    [(0, "got 0"), (-3, "got -3"), (1.5, "got 1.5"), (True, "got True")],
)
def test_bad_budget(tiny_recipe: Path, budget: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"`budget_epochs` must be an int >= 1, {message}"):
        RecipeTrainer(tiny_recipe, budget_epochs=budget)


def test_bad_recipes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`--config` must be a recipe file, got '.*nope.yaml'"):
        RecipeTrainer(tmp_path / "nope.yaml", budget_epochs=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: {max_epochs: 1}\n")
    with pytest.raises(ConfigError, match=r"must have `model` and `data` sections; missing"):
        RecipeTrainer(bad, budget_epochs=1)
    bad.write_text(
        "model: {class_path: evoaug.models.Classifier}\ndata: {class_path: x.Y}\n"
        "trainer: {callbacks: [{class_path: evoaug.EvoAugCallback, "
        "init_args: {population_size: 2}}]}\n"
    )
    with pytest.raises(ConfigError, match=r"`population_size` must be an int"):
        RecipeTrainer(bad, budget_epochs=1)


def test_cli_reports_bad_input_before_any_work(
    tiny_recipe: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["search", "--config", str(tiny_recipe), "--out", str(tmp_path / "o")]
    cases = [
        (["--generations", "-1", "--budget-epochs", "1"], "`generations` must be an int >= 1"),
        (["--generations", "1", "--budget-epochs", "0"], "`budget_epochs` must be an int >= 1"),
        (
            ["--generations", "1", "--budget-epochs", "1", "--runner", "dask",
             "--address", "127.0.0.1:1", "--connect-timeout", "1"],
            "evoaug: error: ",
        ),
        (
            ["--generations", "1", "--budget-epochs", "1", "--runner", "process",
             "--address", "10.0.0.1:6379"],
            "`address` is for the 'ray' and 'dask' runners",
        ),
    ]  # fmt: skip
    for args, message in cases:
        assert main(base + args) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing was started or written
