"""The search rests after generations in a row that change nothing."""

from __future__ import annotations

import json
import logging

import pytest
from pytorch_lightning.callbacks import ModelCheckpoint

from evoaug import ConfigError, EvoAugCallback
from evoaug.callback import SearchRest
from evoaug.callback._meter import Due
from evoaug.callback._state import CallbackState

DESTRUCTIVE = ("Invert", "Solarize", "Cutout", "GaussianNoise", "Rotate")


def test_the_wait_starts_at_patience_and_doubles_until_a_change() -> None:
    rest = SearchRest(patience=3)
    assert [rest.record(epoch=e, changed=False) for e in (1, 2)] == [None, None]
    assert rest.allows(epoch=3, count=3) == 3  # two idle generations: not resting yet
    assert rest.record(epoch=3, changed=False) == 5  # the third: rest 2 epochs
    assert [rest.allows(epoch=e, count=3) for e in (3, 4, 5)] == [0, 0, 1]
    assert rest.record(epoch=5, changed=False) == 9  # 4 epochs
    assert rest.record(epoch=9, changed=False) == 17  # 8 epochs
    assert rest.record(epoch=17, changed=True) is None
    assert (rest.idle, rest.until, rest.resting) == (0, -1, False)
    assert rest.allows(epoch=18, count=2) == 2


def test_without_patience_the_search_never_rests() -> None:
    rest = SearchRest(patience=None)
    assert all(rest.record(epoch=e, changed=False) is None for e in range(20))
    assert rest.idle == 20 and rest.allows(epoch=20, count=4) == 4


def test_the_rest_round_trips_and_a_bad_state_is_refused() -> None:
    rest = SearchRest(patience=1)
    rest.record(epoch=4, changed=False)
    again = SearchRest(patience=1)
    again.load_state_dict(rest.state_dict())
    assert again == rest and again.state_dict() == {"idle": 1, "until": 6}
    for bad in ({"idle": 1}, {"idle": -1, "until": 0}, {"idle": 1, "until": "6"}):
        with pytest.raises(ConfigError, match="'idle' >= 0 and 'until' >= -1"):
            SearchRest(patience=1).load_state_dict(bad)  # type: ignore[arg-type]
    state = CallbackState(
        generation=0, search=None, active_policy={}, active_objectives={}, augmenter={},
        history_lines=0, epoch_done=-1, trained_epoch=-1, config_seed=0,
    )  # fmt: skip
    old = state.to_dict()
    del old["rest"]  # a checkpoint from before the rest
    assert CallbackState.from_dict(old).rest == {}


@pytest.mark.parametrize("value", [0, -1, 1.5, "3"])
def test_bad_patience_is_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="`patience` must be an int >= 1"):
        EvoAugCallback(patience=value)  # type: ignore[arg-type]


def _one_per_epoch(schedule, *, epoch: int, ran: int, **_: object) -> Due:  # type: ignore[no-untyped-def]
    """A budget that pays for one generation at every search epoch's end, whatever the clock."""
    count = 1 if ran == 0 and epoch in schedule.slots else 0
    return Due(count, count, generation_seconds=1.0, left_seconds=10.0, affordable=count)


def _fit(tmp_path, lt, monkeypatch, patience: int | None, *, save=False, ckpt_path=None, least=0):  # type: ignore[no-untyped-def]
    cb = EvoAugCallback(
        ops=DESTRUCTIVE, regularizer=None, patience=patience, min_generations=least,
        population_size=4,
        lookahead_steps=2, lookahead_batch_size=16, train_probe_size=32, val_probe_size=32,
        n_subpolicies=1, n_genes=1, seed=0,
    )  # fmt: skip
    monkeypatch.setattr(cb.meter, "due", _one_per_epoch)
    train, val = lt.loaders(groups=True)
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    lt.trainer(
        tmp_path, [cb, saver] if save else [cb], max_epochs=12, logger=False,
        enable_checkpointing=save,
    ).fit(lt.TinyNet(), train, val, ckpt_path=ckpt_path)  # fmt: skip
    assert cb.schedule is not None and cb.schedule.slots == tuple(range(8))
    assert cb.run_dir is not None
    lines = (cb.run_dir / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    made = [json.loads(line) for line in lines]
    assert not any(d["changed"] for d in made)  # destructive ops: every generation refuses
    return cb, [d["epoch"] for d in made]


def test_a_fit_whose_generations_change_nothing_rests(tmp_path, lt, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO):
        cb, epochs = _fit(tmp_path / "rest", lt, monkeypatch, patience=2)
    _, spent = _fit(tmp_path / "spend", lt, monkeypatch, patience=None)
    assert spent == list(range(8))  # one at every search epoch's end
    assert epochs == [0, 1, 3, 7]  # idle twice: rest 2 epochs, then 4, then 8
    # The budget's generations at the epochs of the rest leave it (1 s each).
    assert cb.meter.forgone_seconds == [1.0, 1.0, 1.0, 1.0]  # epochs 2, 4, 5 and 6
    assert (
        "2 generations in a row changed nothing (patience=2); the search rests until the "
        "end of epoch 3" in caplog.text
    )
    assert (
        "4 generations in a row changed nothing (patience=2); the search rests until the "
        "end of epoch 15" in caplog.text
    )
    text = caplog.text  # the rest is said after the generation that starts it
    assert text.index("evoaug: generation 2 at epoch 1:") < text.index("2 generations in a row")
    assert cb.state_dict()["rest"] == {"idle": 4, "until": 15}
    assert "It ended resting: its last 4 generations changed nothing" in caplog.text


def test_min_generations_run_whatever_the_rest_says(tmp_path, lt, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, epochs = _fit(tmp_path, lt, monkeypatch, patience=1, least=4)
    assert epochs == [0, 1, 2, 3]  # patience=1 alone: 0, 2, 6


@pytest.mark.filterwarnings("ignore:.*dirpath has changed.*")
def test_a_resumed_fit_rests_as_the_uninterrupted_one(tmp_path, lt, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    whole, epochs = _fit(tmp_path / "whole", lt, monkeypatch, patience=2, save=True)
    (ckpt,) = (tmp_path / "whole" / "ckpt").glob("epoch=4-*.ckpt")  # resting until epoch 7
    resumed, again = _fit(
        tmp_path / "resumed", lt, monkeypatch, patience=2, save=True, ckpt_path=ckpt
    )
    assert epochs == [0, 1, 3, 7] and again == [7]
    assert resumed.state_dict()["rest"] == whole.state_dict()["rest"]
    assert resumed.meter.forgone_seconds == whole.meter.forgone_seconds


def test_a_fixed_schedule_never_rests(tmp_path, lt) -> None:  # type: ignore[no-untyped-def]
    cb = EvoAugCallback(
        every_n_epochs=1, patience=1, ops=DESTRUCTIVE, regularizer=None, population_size=4,
        lookahead_steps=2, lookahead_batch_size=16, train_probe_size=32, val_probe_size=32,
        n_subpolicies=1, n_genes=1, seed=0,
    )  # fmt: skip
    train, val = lt.loaders(groups=True)
    lt.trainer(tmp_path, [cb], max_epochs=5, logger=False).fit(lt.TinyNet(), train, val)
    assert cb.run_dir is not None
    lines = (cb.run_dir / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    made = [json.loads(line) for line in lines]
    assert not any(d["changed"] for d in made)
    assert [d["epoch"] for d in made] == [0, 1, 2, 3]  # patience=1 would rest after the first
    assert cb.rest.patience is None and cb.meter.forgone_seconds == []
