import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from evoaug import ConfigError, EvoAugCallback, InputError
from evoaug.models import Classifier, SmallCNN

NUM_CLASSES = 3


class TinyData(pl.LightningDataModule):
    """Random 1x16x16 images, 3 classes, optionally a binary sensitive attribute."""

    num_classes = NUM_CLASSES
    in_channels = 1
    normalization = ((0.5,), (0.25,))

    def __init__(self, groups: bool = False, sizes: tuple[int, int, int] = (48, 24, 30)) -> None:
        super().__init__()
        self.class_names = ["zero", "one", "two"]
        self.groups = groups
        self.group_names = ["majority", "minority"] if groups else None
        self.sensitive_attribute = "tint" if groups else None
        self.sets = [self._make(n, seed) for seed, n in enumerate(sizes)]

    def _make(self, n: int, seed: int) -> TensorDataset:
        g = torch.Generator().manual_seed(seed)
        tensors = [torch.rand(n, 1, 16, 16, generator=g), torch.arange(n) % NUM_CLASSES]
        if self.groups:
            tensors.append((torch.arange(n) % 4 == 0).long())
        return TensorDataset(*tensors)

    def describe(self) -> dict[str, Any]:
        return {"name": "tiny", "sizes": [len(s) for s in self.sets]}

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.sets[0], batch_size=8, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.sets[1], batch_size=8)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.sets[2], batch_size=8)


def _trainer(tmp_path: Path, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = dict(
        max_epochs=1,
        limit_train_batches=2,
        default_root_dir=tmp_path,
        logger=pl.loggers.CSVLogger(tmp_path, name="logs"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    options.update(kwargs)
    return pl.Trainer(**options)


def _metrics(trainer: pl.Trainer) -> dict[str, list[str]]:
    with open(Path(trainer.logger.log_dir) / "metrics.csv") as handle:  # type: ignore[union-attr]
        rows = list(csv.DictReader(handle))
    return {key: [r[key] for r in rows if r[key]] for key in rows[0]}


def _small(**kwargs: Any) -> Classifier:
    return Classifier(**{"model_kwargs": {"width": 4}, "lr": 0.05, **kwargs})


@pytest.mark.parametrize("groups", [False, True], ids=["classes", "sensitive"])
def test_fit_and_test_write_the_report_inputs(tmp_path: Path, groups: bool) -> None:
    data = TinyData(groups=groups)
    model = _small()
    trainer = _trainer(tmp_path)
    trainer.fit(model, datamodule=data)
    assert model.hparams["num_classes"] == NUM_CLASSES and model.hparams["in_channels"] == 1
    (result,) = trainer.test(model, datamodule=data)

    run_dir = Path(trainer.log_dir) / "evoaug"  # type: ignore[arg-type]
    with open(run_dir / "test_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["index", "y_true", "y_pred", "group", "confidence"]
    assert len(rows) == 30
    assert [int(r["index"]) for r in rows] == list(range(30))
    test_set = data.sets[2].tensors
    assert [int(r["y_true"]) for r in rows] == test_set[1].tolist()
    expected_groups = test_set[2] if groups else test_set[1]
    assert [int(r["group"]) for r in rows] == expected_groups.tolist()
    assert all(1 / NUM_CLASSES <= float(r["confidence"]) <= 1 for r in rows)
    accuracy = sum(r["y_true"] == r["y_pred"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(result["test_acc"], abs=1e-6)

    meta = json.loads((run_dir / "test_meta.json").read_text())
    assert meta["num_samples"] == 30 and meta["format_version"] == 1
    assert meta["test_acc"] == pytest.approx(accuracy)
    assert meta["class_names"] == ["zero", "one", "two"]
    assert meta["model"] == "small-cnn"
    assert meta["num_params"] == sum(p.numel() for p in model.parameters())
    assert meta["dataset"] == {"name": "tiny", "sizes": [48, 24, 30]}
    if groups:
        assert meta["groups_source"] == "sensitive attribute"
        assert meta["group_names"] == ["majority", "minority"]
        assert meta["sensitive_attribute"] == "tint"
    else:
        assert meta["groups_source"] == "classes"
        assert meta["group_names"] == ["zero", "one", "two"]
        assert meta["sensitive_attribute"] is None

    names = ["majority", "minority"] if groups else ["zero", "one", "two"]
    metrics = _metrics(trainer)
    for stage in ("val", "test"):
        values = [float(metrics[f"{stage}_acc_group/{n}"][-1]) for n in names]
        assert float(metrics[f"{stage}_worst_group_acc"][-1]) == pytest.approx(min(values))
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_acc", "test_loss"):
        assert metrics[key], key


def test_checkpoint_round_trip_rebuilds_the_lazy_network(tmp_path: Path) -> None:
    data = TinyData()
    model = _small(optimizer="adamw", lr=0.01, scheduler="step", warmup_epochs=1)
    trainer = _trainer(tmp_path)
    trainer.fit(model, datamodule=data)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    loaded = Classifier.load_from_checkpoint(path)
    images = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))
    assert loaded.hparams["optimizer"] == "adamw"


def test_network_instance_trains_and_reloads_with_it(tmp_path: Path) -> None:
    data = TinyData(groups=True)
    model = Classifier(network=SmallCNN(1, NUM_CLASSES, width=4), scheduler="none")
    trainer = _trainer(tmp_path)
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(tmp_path / "net.ckpt")
    loaded = Classifier.load_from_checkpoint(
        tmp_path / "net.ckpt", network=SmallCNN(1, NUM_CLASSES, width=4)
    )
    images = torch.rand(2, 1, 16, 16)
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))
    assert loaded.model_name == "evoaug.models._small_cnn.SmallCNN"


def _configured(max_epochs: int, **kwargs: Any) -> tuple[Any, list[float]]:
    model = _small(num_classes=NUM_CLASSES, in_channels=1, **kwargs)
    model.trainer = pl.Trainer(max_epochs=max_epochs, logger=False, enable_progress_bar=False)
    config = model.configure_optimizers()
    if isinstance(config, torch.optim.Optimizer):
        return config, []
    scheduler = config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["interval"] == "epoch"
    rates = []
    for _ in range(max_epochs):
        rates.append(config["optimizer"].param_groups[0]["lr"])
        config["optimizer"].step()
        scheduler.step()
    return config["optimizer"], rates


def test_optimizer_choices() -> None:
    sgd, _ = _configured(2, scheduler="none", weight_decay=0.0)
    assert type(sgd).__name__ == "SGD" and sgd.defaults["nesterov"]
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["weight_decay"] == 0
    adam, _ = _configured(2, optimizer="adam", scheduler="none")
    assert type(adam).__name__ == "Adam" and adam.defaults["lr"] == 0.05
    adamw, _ = _configured(2, optimizer="adamw", scheduler="none")
    assert type(adamw).__name__ == "AdamW" and adamw.defaults["weight_decay"] == 5e-4


def test_scheduler_choices() -> None:
    _, cosine = _configured(4, scheduler="cosine")
    assert cosine == pytest.approx([0.05, 0.05 * 0.8535534, 0.025, 0.05 * 0.1464466])
    _, warm = _configured(4, scheduler="cosine", warmup_epochs=1)
    assert warm == pytest.approx([0.025, 0.05, 0.0375, 0.0125])
    _, step = _configured(10, scheduler="step", milestones=[2, 5], gamma=0.5)
    assert step == pytest.approx([0.05] * 2 + [0.025] * 3 + [0.0125] * 5)
    _, default_step = _configured(10, scheduler="step")
    assert default_step == pytest.approx([0.05] * 3 + [0.01] * 3 + [0.002] * 2 + [0.0004] * 2)
    _, warm_only = _configured(3, scheduler="none", warmup_epochs=2)
    assert warm_only == pytest.approx([0.05 / 3, 0.1 / 3, 0.05])


def test_cosine_needs_max_epochs() -> None:
    with pytest.raises(ConfigError, match=r"`scheduler='cosine'` needs the Trainer's `max_epochs`"):
        _configured(-1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "vgg"}, "unknown model 'vgg'.*Available models"),
        ({"model_kwargs": {"num_classes": 3}}, r"`model_kwargs` must not set \['num_classes'\]"),
        ({"model_kwargs": {"depth": 3}}, r"model 'small-cnn' takes the arguments"),
        ({"model_kwargs": [1]}, "`model_kwargs` must be a dict or None"),
        ({"network": SmallCNN(), "model_kwargs": {"width": 4}}, "must be None with `network`"),
        ({"network": "SmallCNN"}, "`network` must be a torch.nn.Module or None"),
        ({"optimizer": "rmsprop"}, r"`optimizer` must be one of \('sgd', 'adam', 'adamw'\)"),
        ({"scheduler": "linear"}, r"`scheduler` must be one of \('cosine', 'step', 'none'\)"),
        ({"lr": 0}, "`lr` must be a number > 0, got 0"),
        ({"momentum": 1.0}, r"`momentum` must be a number in \[0, 1\)"),
        ({"momentum": 0.0}, "`nesterov=True` needs `momentum` > 0"),
        ({"nesterov": "yes"}, "`nesterov` must be a bool"),
        ({"weight_decay": -1e-4}, "`weight_decay` must be a number >= 0"),
        ({"warmup_epochs": -1}, "`warmup_epochs` must be an int >= 0"),
        ({"milestones": [5, 2]}, "`milestones` must be increasing epochs >= 1"),
        ({"milestones": [1.5]}, "`milestones` must be a list of ints or None"),
        ({"gamma": 0}, "`gamma` must be a number > 0"),
        ({"label_smoothing": 1.0}, r"`label_smoothing` must be a number in \[0, 1\)"),
        ({"num_classes": 1}, "`num_classes` must be an int >= 2, got 1"),
        ({"in_channels": 0}, "`in_channels` must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Classifier(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "optimizer", "nesterov"),
    [
        # Adam and AdamW have no Nesterov momentum: the default nesterov=True needs no momentum.
        ({"optimizer": "adam", "momentum": 0.0}, "Adam", None),
        ({"optimizer": "adamw", "momentum": 0.0}, "AdamW", None),
        ({"optimizer": "sgd", "momentum": 0.0, "nesterov": False}, "SGD", False),
        ({"optimizer": "sgd", "momentum": 0.5}, "SGD", True),
    ],
)
def test_nesterov_applies_to_sgd_only(
    kwargs: dict[str, Any], optimizer: str, nesterov: bool | None
) -> None:
    built, _ = _configured(1, scheduler="none", **kwargs)
    assert type(built).__name__ == optimizer
    assert built.defaults.get("nesterov") == nesterov
    assert built.defaults.get("momentum", 0.0) == kwargs["momentum"]


def test_without_datamodule_num_classes_is_required(tmp_path: Path) -> None:
    loader = TinyData().train_dataloader()
    with pytest.raises(
        ConfigError, match="`num_classes` is None and the Trainer has no datamodule"
    ):
        _trainer(tmp_path).fit(Classifier(), loader, loader)
    with pytest.raises(
        ConfigError, match="`in_channels` is None and the Trainer has no datamodule"
    ):
        _trainer(tmp_path).fit(Classifier(num_classes=3), loader, loader)


def test_num_classes_must_match_the_datamodule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="`num_classes` is 5 but the datamodule has 3 classes"):
        _trainer(tmp_path).fit(Classifier(num_classes=5), datamodule=TinyData())


def test_network_outputs_must_match_the_classes(tmp_path: Path) -> None:
    model = Classifier(network=SmallCNN(1, 5, width=4))
    with pytest.raises(ConfigError, match="`network` ends in 5 outputs but there are 3 classes"):
        _trainer(tmp_path).fit(model, datamodule=TinyData())


def test_forward_before_build_and_bad_batches() -> None:
    with pytest.raises(Exception, match="network is not built yet"):
        Classifier()(torch.rand(1, 1, 16, 16))
    model = _small(num_classes=3, in_channels=1)
    with pytest.raises(InputError, match=r"batches must be \(images, labels\) or"):
        model.training_step(torch.rand(2, 1, 16, 16), 0)
    with pytest.raises(InputError, match="got a list of 4 elements"):
        model.training_step([torch.rand(2, 1, 16, 16)] * 4, 0)


def test_loss_fn_has_label_smoothing() -> None:
    model = Classifier(num_classes=3, in_channels=1, label_smoothing=0.1)
    assert model.loss_fn.label_smoothing == 0.1


DDP_SCRIPT = Path(__file__).parent / "scripts" / "ddp_classifier.py"


@pytest.mark.slow
def test_two_process_ddp_writes_each_test_sample_once_in_order(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(DDP_SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = json.loads((tmp_path / "expected.json").read_text())
    with open(tmp_path / "evoaug" / "test_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["y_true"]) for r in rows] == expected["y_true"]
    assert [int(r["group"]) for r in rows] == expected["group"]
    meta = json.loads((tmp_path / "evoaug" / "test_meta.json").read_text())
    assert meta["num_samples"] == 29 and meta["groups_source"] == "sensitive attribute"


def test_trains_with_the_evoaug_callback_into_one_run_dir(tmp_path: Path) -> None:
    data = TinyData(groups=True)
    model = _small()
    callback = EvoAugCallback(
        population_size=4,
        lookahead_steps=2,
        lookahead_batch_size=8,
        train_probe_size=16,
        val_probe_size=16,
        n_subpolicies=1,
        n_genes=1,
        every_n_epochs=1,
        warmup_epochs=1,
        min_generations=1,
        initial_presets=("identity",),
        ops=("Identity", "Invert", "Brightness"),
        normalize=data.normalization,
        seed=0,
    )
    trainer = _trainer(tmp_path, callbacks=[callback], max_epochs=2)
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data)
    run_dir = Path(trainer.log_dir) / "evoaug"  # type: ignore[arg-type]
    assert (run_dir / "history.jsonl").is_file()
    assert (run_dir / "test_predictions.csv").is_file()


def test_several_test_loaders_each_log_their_own_accuracy(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(60, 1, 8, 8, generator=g), torch.arange(60) % 3
    groups = (torch.arange(60) % 4 == 0).long()
    clf = Classifier(model="small-cnn", model_kwargs={"width": 4}, scheduler="none",
                     num_classes=3, in_channels=1)  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=1, default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    first = TensorDataset(x[:30], y[:30], groups[:30])
    trainer.fit(
        clf,
        DataLoader(TensorDataset(x, y, groups), batch_size=16),
        DataLoader(first, batch_size=16),
    )
    second = TensorDataset(x[30:], torch.zeros(30, dtype=torch.long), groups[30:])
    results = trainer.test(
        clf, [DataLoader(first, batch_size=16), DataLoader(second, batch_size=16)], verbose=False
    )
    clf.eval()
    with torch.no_grad():
        predicted = clf(x).argmax(1)
    own = [(predicted[:30] == y[:30]).float().mean(), (predicted[30:] == 0).float().mean()]
    for k, result in enumerate(results):
        assert result[f"test_acc/dataloader_idx_{k}"] == pytest.approx(float(own[k]), abs=1e-6)
    # The per-group accuracies are the first loader's, as test_predictions.csv is.
    for group in (0, 1):
        keep = groups[:30] == group
        expected = float((predicted[:30][keep] == y[:30][keep]).float().mean())
        assert results[0][f"test_acc_group/{group}"] == pytest.approx(expected, abs=1e-6)
