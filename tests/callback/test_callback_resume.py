import json

import pytest
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from evoaug import EvoAugCallback, search

# Resumed runs write checkpoints to a second folder; Lightning notes that, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:.*dirpath has changed.*")


class _Kill(Callback):
    """Stop the run like a killed job: an exception at the start of an epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):  # type: ignore[no-untyped-def]
        if trainer.current_epoch == self.epoch:
            raise _Killed


class _Killed(Exception):
    pass


def _run(
    lt,
    root,
    max_epochs: int,
    ckpt_path=None,
    save: bool = False,
    kill_at=None,
    ckpt_dir: str = "ckpt",
    mode: str = "batch",
    seen=None,
    wrong_val: float = 0.0,
    lr: float = 0.05,
    every: int = 1,
    extra=(),
):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    cb = EvoAugCallback(every_n_epochs=every, mode=mode, **{**lt.SMALL, "min_generations": 0})
    data = lt.make_data(n=64)
    train = DataLoader(cb.wrap_dataset(data) if mode == "dataset" else data, batch_size=16)
    x, y = lt.make_data(n=32, seed=1).tensors
    y = torch.where(torch.arange(32) < round(wrong_val * 32), (y + 1) % 4, y)  # unfittable
    val = DataLoader(TensorDataset(x, y), batch_size=32)
    callbacks = [cb, *extra] if seen is None else [cb, _Record(seen), *extra]
    if save:
        callbacks.append(ModelCheckpoint(dirpath=root / ckpt_dir, save_last=True))
    if kill_at is not None:
        callbacks.append(_Kill(kill_at))
    trainer = lt.trainer(
        root, callbacks, max_epochs=max_epochs, logger=False, enable_checkpointing=save
    )
    if kill_at is not None:
        with pytest.raises(_Killed):
            trainer.fit(lt.TinyNet(lr=lr), train, val, ckpt_path=ckpt_path)
    else:
        trainer.fit(lt.TinyNet(lr=lr), train, val, ckpt_path=ckpt_path)
    return cb


class _Record(Callback):
    """Keep every training batch's images, by epoch."""

    def __init__(self, seen: list) -> None:  # type: ignore[type-arg]
        self.seen = seen

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # type: ignore[no-untyped-def]
        self.seen.append((trainer.current_epoch, batch[0].clone()))


def _history(root):  # type: ignore[no-untyped-def]
    records, warnings = search.read_history(root / "evoaug" / "history.jsonl")
    assert warnings == []
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _decisions(root):  # type: ignore[no-untyped-def]
    lines = (root / "evoaug" / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _timeline(root):  # type: ignore[no-untyped-def]
    lines = (root / "evoaug" / "timeline.jsonl").read_text(encoding="utf-8").splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "hypervolume"} for line in lines]


def test_resume_continues_to_the_same_policies(tmp_path, lt) -> None:
    full = _run(lt, tmp_path / "full", max_epochs=4)
    _run(lt, tmp_path / "part", max_epochs=4, save=True, kill_at=2)
    ckpt = tmp_path / "part" / "ckpt" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)  # plain values only
    (key,) = [k for k in state["callbacks"] if k.startswith("EvoAugCallback")]
    # the generations of epochs 0 and 1 are in the checkpoint (a checkpoint saved before an
    # epoch's generation makes the resumed run catch it up: tested below)
    assert state["callbacks"][key]["generation"] == 2
    json.dumps(state["callbacks"][key]["search"])
    resumed = _run(lt, tmp_path / "part", max_epochs=4, ckpt_path=ckpt, save=True, ckpt_dir="ckpt2")
    assert resumed.generation == full.generation == 3
    assert resumed.best_policy == full.best_policy
    assert _history(tmp_path / "part") == _history(tmp_path / "full")
    assert resumed.search.checksum() == full.search.checksum()
    # the evidence rule decides the same after a resume: every decision, every bound
    assert _decisions(tmp_path / "part") == _decisions(tmp_path / "full")
    assert [d["generation"] for d in _decisions(tmp_path / "full")] == [0, 1, 2]


def test_a_regularizer_on_trial_resumes_on_trial(tmp_path, lt) -> None:
    # Half of the validation labels are wrong: the model fits its training images, not those.
    _run(lt, tmp_path / "full", max_epochs=4, wrong_val=0.5)
    _run(lt, tmp_path / "part", max_epochs=4, save=True, kill_at=2, wrong_val=0.5)
    ckpt = tmp_path / "part" / "ckpt" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    (key,) = [k for k in state["callbacks"] if k.startswith("EvoAugCallback")]
    trial = state["callbacks"][key]["trial"]
    assert set(trial) == {"key", "fallback", "correct", "since", "until", "judged"}
    assert trial["fallback"]["name"] == "identity"
    _run(
        lt, tmp_path / "part", max_epochs=4, ckpt_path=ckpt, save=True, ckpt_dir="ckpt2",
        wrong_val=0.5,
    )  # fmt: skip
    full = _decisions(tmp_path / "full")
    assert any("is adopted as a regularizer" in d["reason"] for d in full[:2])  # before the kill
    assert _decisions(tmp_path / "part") == full  # held on trial after the resume too


def test_history_beyond_the_checkpoint_is_dropped(tmp_path, lt) -> None:
    _run(lt, tmp_path, max_epochs=3, save=True, kill_at=2)
    history = tmp_path / "evoaug" / "history.jsonl"
    lines = history.read_text().splitlines()
    history.write_text("\n".join(lines + lines[-4:]) + "\n")  # a generation the checkpoint lacks
    made = tmp_path / "evoaug" / "decisions.jsonl"
    made.write_text(made.read_text() + made.read_text().splitlines()[-1] + "\n")
    _run(
        lt,
        tmp_path,
        max_epochs=3,
        ckpt_path=tmp_path / "ckpt" / "last.ckpt",
        save=True,
        ckpt_dir="ckpt2",
    )
    generations = [r["generation"] for r in _history(tmp_path)]
    assert generations == [0] * 4 + [1] * 4  # the extra copy is gone; epoch 2 is the last
    assert [d["generation"] for d in _decisions(tmp_path)] == [0, 1]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"version": 99}, "callback state version 99"),
        ({"version": 1, "generation": 0}, r"state is missing \['search', 'active_policy'"),
        (
            {"version": 1, "search": None, "active_policy": {}, "active_objectives": {},
             "augmenter": {}, "generation": -1, "history_lines": 0, "epoch_done": -1,
             "trained_epoch": -1, "config_seed": 0},
            r"callback state: `generation` must be an int >= 0, got -1",
        ),
    ],
)  # fmt: skip
def test_bad_callback_state_is_refused(lt, bad, message) -> None:  # type: ignore[no-untyped-def]
    import evoaug

    cb = EvoAugCallback(**lt.SMALL)
    with pytest.raises(evoaug.ConfigError, match=message):
        cb._apply_state(bad)


class _SaveAtValidationEnd(Callback):
    """Checkpoint at validation end, i.e. before the epoch's generation ran."""

    def __init__(self, path, epoch: int = 1) -> None:  # type: ignore[no-untyped-def]
        self.path = path
        self.epoch = epoch

    def on_validation_end(self, trainer, pl_module):  # type: ignore[no-untyped-def]
        if trainer.current_epoch == self.epoch:
            trainer.save_checkpoint(self.path)


def test_checkpoint_before_a_generation_catches_it_up_on_resume(tmp_path, lt) -> None:
    _run(lt, tmp_path / "full", max_epochs=4)
    torch.manual_seed(0)
    cb = EvoAugCallback(every_n_epochs=1, **{**lt.SMALL, "min_generations": 0})
    train = DataLoader(lt.make_data(n=64), batch_size=16, shuffle=False)
    val = DataLoader(lt.make_data(n=32, seed=1), batch_size=32)
    ckpt = tmp_path / "part" / "mid.ckpt"
    trainer = lt.trainer(
        tmp_path / "part", [cb, _SaveAtValidationEnd(ckpt), _Kill(2)], max_epochs=4, logger=False
    )
    with pytest.raises(_Killed):
        trainer.fit(lt.TinyNet(), train, val)
    state = torch.load(ckpt, weights_only=True)
    (key,) = [k for k in state["callbacks"] if k.startswith("EvoAugCallback")]
    assert state["callbacks"][key]["generation"] == 1  # epoch 1's generation had not run yet
    resumed = _run(lt, tmp_path / "part", max_epochs=4, ckpt_path=ckpt)
    assert resumed.generation == 3
    assert _history(tmp_path / "part") == _history(tmp_path / "full")
    # Every epoch once: Lightning calls on_train_epoch_end again for the restored epoch, after
    # the catch-up has recorded it.
    assert [r["epoch"] for r in _timeline(tmp_path / "part")] == [0, 1, 2, 3]
    assert _timeline(tmp_path / "part") == _timeline(tmp_path / "full")


def test_checkpoint_before_an_epoch_end_fit_check_catches_it_up_on_resume(tmp_path, lt) -> None:
    # A slow learner and one generation (epoch 0): the regularizer comes from an epoch-end check.
    slow = dict(max_epochs=6, wrong_val=0.5, lr=0.01, every=10)
    _run(lt, tmp_path / "full", **slow)
    full = _decisions(tmp_path / "full")
    (adopted,) = [d["epoch"] for d in full if "is adopted as a regularizer" in d["reason"]]
    assert "generation" not in full[-1] and 1 <= adopted <= 4
    ckpt = tmp_path / "part" / "mid.ckpt"
    _run(
        lt, tmp_path / "part", **slow, kill_at=adopted + 1,
        extra=[_SaveAtValidationEnd(ckpt, adopted)],
    )  # fmt: skip
    state = torch.load(ckpt, weights_only=True)
    (key,) = [k for k in state["callbacks"] if k.startswith("EvoAugCallback")]
    assert state["callbacks"][key]["trial"] == {}  # saved before the check adopted it
    _run(lt, tmp_path / "part", **slow, ckpt_path=ckpt)
    assert _decisions(tmp_path / "part") == full
    assert _timeline(tmp_path / "part") == _timeline(tmp_path / "full")


def test_dataset_mode_resume_continues_the_augmentation_stream(tmp_path, lt) -> None:
    """In dataset mode the images are augmented in the dataset (main process here): a resumed
    run trains on the same augmented batches and reaches the same search."""
    full_seen: list = []  # type: ignore[type-arg]
    full = _run(lt, tmp_path / "full", max_epochs=4, mode="dataset", seen=full_seen)
    _run(lt, tmp_path / "part", max_epochs=4, save=True, kill_at=2, mode="dataset")
    ckpt = tmp_path / "part" / "ckpt" / "last.ckpt"
    seen: list = []  # type: ignore[type-arg]
    resumed = _run(
        lt, tmp_path / "part", max_epochs=4, ckpt_path=ckpt, save=True, ckpt_dir="ckpt2",
        mode="dataset", seen=seen,
    )  # fmt: skip
    later = [(epoch, x) for epoch, x in full_seen if epoch >= 2]
    assert [e for e, _ in seen] == [e for e, _ in later] and seen
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(seen, later, strict=True))
    assert resumed.search is not None and full.search is not None
    assert resumed.search.checksum() == full.search.checksum()
    assert _history(tmp_path / "part") == _history(tmp_path / "full")


def test_state_key_names_the_settings_that_shape_the_search(lt) -> None:
    cb = EvoAugCallback(**lt.SMALL)
    assert cb.state_key.startswith("EvoAugCallback{")
    for part in ("'population_size': 4", "'n_subpolicies': 2", "'n_genes': 1", "'seed': 0"):
        assert part in cb.state_key
    assert EvoAugCallback(**{**lt.SMALL, "seed": 1}).state_key != cb.state_key


def test_checkpoint_under_the_old_state_key_still_resumes(tmp_path, lt) -> None:
    _run(lt, tmp_path / "part", max_epochs=4, save=True, kill_at=2)
    path = tmp_path / "part" / "ckpt" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    [key] = [k for k in checkpoint["callbacks"] if str(k).startswith("EvoAugCallback")]
    checkpoint["callbacks"]["EvoAugCallback"] = checkpoint["callbacks"].pop(key)
    torch.save(checkpoint, path)
    with pytest.warns(UserWarning, match="EvoAugCallback"):  # Lightning notes the unknown key
        resumed = _run(
            lt, tmp_path / "part", max_epochs=4, ckpt_path=path, save=True, ckpt_dir="c2"
        )
    full = _run(lt, tmp_path / "full", max_epochs=4)
    assert resumed.generation == full.generation == 3
    assert _history(tmp_path / "part") == _history(tmp_path / "full")


def test_two_callbacks_in_one_trainer_are_refused(tmp_path, lt) -> None:
    import evoaug

    train, val = lt.loaders()
    other = EvoAugCallback(**{**lt.SMALL, "seed": 1})
    trainer = lt.trainer(tmp_path, [EvoAugCallback(**lt.SMALL), other])
    with pytest.raises(evoaug.ConfigError, match="a Trainer takes one EvoAugCallback, got 2"):
        trainer.fit(lt.TinyNet(), train, val)
    # Two with the same settings share a state key: Lightning refuses them when it is built.
    with pytest.raises(RuntimeError, match="more than one stateful callback of type `EvoAug"):
        lt.trainer(tmp_path, [EvoAugCallback(**lt.SMALL), EvoAugCallback(**lt.SMALL)])
