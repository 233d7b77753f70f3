"""The swap decision in real fits: evidence or the incumbent stays (decision="evidence")."""

import json

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from evoaug import EvoAugCallback

SEARCH = dict(
    population_size=4,
    lookahead_steps=10,
    lookahead_batch_size=16,
    train_probe_size=64,
    val_probe_size=64,
    n_subpolicies=2,
    n_genes=1,
    every_n_epochs=1,
)
DESTRUCTIVE = ("Invert", "Solarize", "Cutout", "GaussianNoise", "Rotate")


def decisions(root) -> list[dict]:  # type: ignore[no-untyped-def]
    path = root / "evoaug" / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def inverted_minority(lt, n: int, seed: int, fraction: float) -> TensorDataset:  # type: ignore[no-untyped-def]
    """The callback tests' data with a share of images inverted (group 1)."""
    x, y = lt.make_data(n=n, seed=seed).tensors
    inverted = torch.rand(n, generator=torch.Generator().manual_seed(seed + 100)) < fraction
    x = torch.where(inverted.view(-1, 1, 1, 1), 1 - x, x)
    return TensorDataset(x, y, inverted.long())


@pytest.mark.parametrize("seed", [0, 1])
def test_a_search_space_of_destructive_ops_keeps_no_augmentation(tmp_path, lt, seed) -> None:
    cb = EvoAugCallback(ops=DESTRUCTIVE, seed=seed, **SEARCH)
    train, val = lt.loaders(groups=True)
    lt.trainer(tmp_path, [cb], max_epochs=4, logger=False).fit(lt.TinyNet(), train, val)
    assert cb.best_policy.ops == ("Identity",)
    made = decisions(tmp_path)
    assert [d["generation"] for d in made] == [0, 1, 2]  # one decision per generation
    assert not any(d["changed"] for d in made)
    for d in made:
        assert d["incumbent"]["name"] == d["chosen"]["name"] == "identity"
        assert "the incumbent stays" in d["reason"]
        for versus in d["proposals"].values():  # every challenger's evidence, with its bound
            assert all(set(a) == {"mean", "lower", "n"} for a in versus.values())
            assert not all(a["lower"] > 0 for a in versus.values()) or d["guard"]
        assert set(d["credit"]) == set(DESTRUCTIVE)


def test_an_op_that_lifts_the_group_left_behind_is_adopted(tmp_path, lt) -> None:
    # Training images are never inverted; half of the validation images are (group 1):
    # inversion is what lifts the worst group.
    train = DataLoader(
        inverted_minority(lt, 192, 0, 0.0),
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )
    val = DataLoader(inverted_minority(lt, 256, 1, 0.5), batch_size=32)
    # A guard that sees the gain whatever the initial weights: 30 steps, 256 probe images.
    settings = {**SEARCH, "lookahead_steps": 30, "val_probe_size": 256}
    cb = EvoAugCallback(ops=("Invert", "Rotate", "ShearX", "Cutout", "Brightness"), **settings)
    lt.trainer(tmp_path, [cb], max_epochs=4, logger=False).fit(lt.TinyNet(), train, val)
    assert "Invert" in cb.best_policy.ops
    first = decisions(tmp_path)[0]
    assert first["changed"] and first["incumbent"]["name"] == "identity"
    assert "passed the guard" in first["reason"]
    assert first["guard"]["incumbent"]["lower"] > 0  # paired look-ahead evidence
    assert first["credit"]["Invert"] == max(first["credit"].values())  # the op that helps
    # Only no augmentation and the coverage op keep the guard's margin; the rest need a bound
    # above zero.
    for d in decisions(tmp_path):
        if d["guard"]:
            name = d["challenger"]["name"]
            lenient = name == "identity" or name.startswith("evoaug coverage")
            assert d["margin"] == (0.02 if lenient else 0.0), name
            # the look-ahead's word alone: an error rate shared by the 4 planned guards
            assert d["confidence"] == pytest.approx(0.9 if lenient else 1 - 0.1 / 4), name


def test_front_decision_trains_the_selection_pick_without_a_decision_file(tmp_path, lt) -> None:
    cb = EvoAugCallback(decision="front", ops=DESTRUCTIVE, **SEARCH)
    train, val = lt.loaders(groups=True)
    lt.trainer(tmp_path, [cb], max_epochs=3, logger=False).fit(lt.TinyNet(), train, val)
    assert cb.best_policy.name is not None and cb.best_policy.name.startswith("evoaug generation")
    assert not (tmp_path / "evoaug" / "decisions.jsonl").exists()


def test_the_log_states_what_the_search_costs_and_what_budget_would_pay(tmp_path, lt, caplog):  # type: ignore[no-untyped-def]
    import logging

    cb = EvoAugCallback(search_budget=0.01, **{**SEARCH, "every_n_epochs": None})
    train, val = lt.loaders()
    with caplog.at_level(logging.INFO):
        lt.trainer(tmp_path, [cb], max_epochs=3, logger=False).fit(lt.TinyNet(), train, val)
    assert cb.generation == 0
    assert "the budget (1%) pays for no generation: one costs about" in caplog.text
    assert "would pay for one" in caplog.text


def noisy_val(lt, fraction: float):  # type: ignore[no-untyped-def]
    """Validation images of which ``fraction`` carry a wrong label: the model cannot fit them."""
    x, y, g = lt.make_data(n=96, seed=1, groups=True).tensors
    wrong = torch.arange(96) < round(fraction * 96)
    return DataLoader(TensorDataset(x, torch.where(wrong, (y + 1) % 4, y), g), batch_size=32)


def test_a_model_that_fits_its_training_images_adopts_the_regularizer(tmp_path, lt) -> None:
    # The tiny data is fitted from the first epoch on; half of the validation labels are wrong,
    # so the validation probe is not.
    cb = EvoAugCallback(**SEARCH)
    train, _ = lt.loaders(groups=True)
    lt.trainer(tmp_path, [cb], max_epochs=3, logger=False).fit(
        lt.TinyNet(), train, noisy_val(lt, 0.5)
    )
    first, *later = decisions(tmp_path)
    assert first["changed"] and first["chosen"]["name"] == "trivialaugment"
    assert first["reason"].startswith("the model fits 100.0% of its clean training probe and ")
    assert (
        "% of its validation probe: trivialaugment is adopted as a regularizer" in first["reason"]
    )
    assert first["guard"] == {}  # a look-ahead cannot see its gain: none runs
    assert first["credit"]  # the evidence was gathered first (a covering op would go first)
    for d in later:  # on trial: only added to, or dropped when validation got worse
        if d["reason"].startswith("the validation probe's accuracy fell"):
            assert d["chosen"]["name"] == "identity"
            break
        assert d["challenger"] is None or d["challenger"]["name"].startswith("trivialaugment +")


@pytest.mark.parametrize(
    ("settings", "wrong"),
    [({"regularizer": None}, 0.5), ({}, 0.0)],
    ids=["no regularizer", "validation fitted too"],
)
def test_no_regularizer_is_offered_without_one_or_without_the_gap(  # type: ignore[no-untyped-def]
    tmp_path, lt, settings, wrong
) -> None:
    cb = EvoAugCallback(**settings, **SEARCH)
    train, _ = lt.loaders(groups=True)
    lt.trainer(tmp_path, [cb], max_epochs=2, logger=False).fit(
        lt.TinyNet(), train, noisy_val(lt, wrong)
    )
    assert not any(d["reason"].startswith("the model fits") for d in decisions(tmp_path))


def test_the_regularizer_is_adopted_at_the_first_epoch_end_the_model_fits(tmp_path, lt) -> None:
    # A slow learner: it does not fit its training images at the generation (epoch 0), but does
    # a few epochs later, between generations (one every 10 epochs).
    cb = EvoAugCallback(**{**SEARCH, "every_n_epochs": 10})
    train, _ = lt.loaders(groups=True)
    lt.trainer(tmp_path, [cb], max_epochs=6, logger=False).fit(
        lt.TinyNet(lr=0.002), train, noisy_val(lt, 0.5)
    )
    generation, *checks = decisions(tmp_path)
    assert generation["generation"] == 0 and generation["epoch"] == 0
    assert not generation["reason"].startswith("the model fits")
    adoption, verdict = checks  # adopted, then judged once the model fits its images again
    assert "generation" not in adoption and 0 < adoption["epoch"] < 5
    assert adoption["changed"] and adoption["chosen"]["name"] == "trivialaugment"
    assert "trivialaugment is adopted as a regularizer" in adoption["reason"]
    assert verdict["epoch"] > adoption["epoch"] and not verdict["changed"]
    assert verdict["reason"].startswith("trivialaugment stays as a regularizer")
    assert cb.best_policy.name == "trivialaugment"
    timeline = [
        json.loads(line)
        for line in (tmp_path / "evoaug" / "timeline.jsonl").read_text("utf-8").splitlines()
    ]
    names = [t["policy"]["name"] for t in timeline]
    at = adoption["epoch"]
    assert names == ["identity"] * at + ["trivialaugment"] * (6 - at)  # trains it from then on


def test_a_failing_fit_check_is_logged_and_training_goes_on(  # type: ignore[no-untyped-def]
    tmp_path, lt, monkeypatch, caplog
) -> None:
    import logging

    from evoaug.callback._generation import OnlineSearch

    def broken(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("probe forward failed")

    monkeypatch.setattr(OnlineSearch, "check_fit", broken)
    cb = EvoAugCallback(**{**SEARCH, "every_n_epochs": 10})
    train, val = lt.loaders(groups=True)
    trainer = lt.trainer(tmp_path, [cb], max_epochs=3, logger=False)
    with caplog.at_level(logging.INFO):
        trainer.fit(lt.TinyNet(), train, val)
    assert trainer.current_epoch == 3 and cb.generation == 1
    for epoch in (1, 2):  # every epoch end after the generation (epoch 0) tried, and said so
        assert (
            f"evoaug: the fit check at epoch {epoch} failed (RuntimeError: probe forward "
            "failed); training goes on with the current policy"
        ) in caplog.text
