"""End to end: a real short EvoAugCallback run on scikit-learn digits, then its report.

Digits (8x8, 10 classes) with a sensitive attribute: a group of inverted images, rare in
training (10%) and half of the test set. The test predictions are written by
``evoaug.models.Classifier``, and by the small module below in the same format, so the report's
test does not depend on the Classifier alone. Set
``EVOAUG_REPORT_SCREENSHOT=path.png`` to also save a screenshot of the report (needs Chromium),
e.g. for the docs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from evoaug import EvoAugCallback
from evoaug.models import Classifier
from evoaug.report import write_report

GROUP_NAMES = ["upright", "inverted"]


def _split(
    images: torch.Tensor, labels: torch.Tensor, index: np.ndarray, inverted: float, seed: int
) -> TensorDataset:
    g = np.random.default_rng(seed)
    groups = torch.from_numpy((g.random(len(index)) < inverted).astype(np.int64))
    x = images[index].clone()
    x[groups == 1] = 1.0 - x[groups == 1]
    return TensorDataset(x, labels[index], groups)


def _digits() -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target, dtype=torch.long)
    order = np.random.default_rng(0).permutation(len(labels))
    train, val, test = order[:900], order[900:1200], order[1200:1500]
    return (
        _split(images, labels, train, 0.1, 1),
        _split(images, labels, val, 0.5, 2),
        _split(images, labels, test, 0.5, 3),
    )


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Linear(16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc(self.features(x))
        return out


class DigitsModule(pl.LightningModule):
    """A minimal classifier that saves test predictions in the report's format."""

    def __init__(self) -> None:
        super().__init__()
        self.network = Net()
        self.rows: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.network(x)
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_acc", (self(batch[0]).argmax(1) == batch[1]).float().mean())

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y, g = batch
        probs = self(x).softmax(1)
        conf, pred = probs.max(1)
        self.rows.append(torch.stack([y.float(), pred.float(), g.float(), conf], 1))

    def on_test_epoch_end(self) -> None:
        rows = torch.cat(self.rows).tolist()
        run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "evoaug"
        run_dir.mkdir(parents=True, exist_ok=True)
        lines = ["index,y_true,y_pred,group,confidence"]
        lines += [f"{i},{int(t)},{int(p)},{int(g)},{c:.6f}" for i, (t, p, g, c) in enumerate(rows)]
        (run_dir / "test_predictions.csv").write_text("\n".join(lines) + "\n")
        meta = {
            "class_names": [str(c) for c in range(10)],
            "group_names": GROUP_NAMES,
            "groups_source": "sensitive attribute",
            "sensitive_attribute": "inverted",
            "dataset": {"dataset_name": "digits"},
            "model": "Net",
        }
        (run_dir / "test_meta.json").write_text(json.dumps(meta))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


class Digits(pl.LightningDataModule):
    """Loaders plus the names the Classifier reads."""

    num_classes = 10
    sensitive_attribute = "inverted"

    def __init__(self) -> None:
        super().__init__()
        self.class_names = [str(c) for c in range(10)]
        self.group_names = list(GROUP_NAMES)
        self.train, self.val, self.test = _digits()

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(
            self.train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)
        )

    def val_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.val, batch_size=100)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(self.test, batch_size=100)

    def describe(self) -> dict[str, Any]:
        return {
            "dataset_name": "digits",
            "num_classes": 10,
            "class_names": self.class_names,
            "group_names": self.group_names,
            "sensitive_attribute": self.sensitive_attribute,
        }


def _module(kind: str) -> pl.LightningModule:
    if kind == "classifier":
        module: pl.LightningModule = Classifier(
            network=Net(), num_classes=10, in_channels=1, lr=0.1, scheduler="none"
        )
        return module
    return DigitsModule()


@pytest.fixture
def one_thread() -> Any:
    """A tiny model trains fastest on one thread (and does not fight parallel test workers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trainer(tmp_path: Path, callbacks: list[pl.Callback]) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=3,
        default_root_dir=tmp_path,
        logger=pl.loggers.CSVLogger(tmp_path, name="logs"),
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        num_sanity_val_steps=0,
        log_every_n_steps=5,
    )


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("kind", ["classifier", "own"])
def test_report_of_a_real_digits_run(tmp_path: Path, kind: str) -> None:
    data = Digits()
    # The baseline: the same model trained without augmentation search.
    pl.seed_everything(0, verbose=False)
    baseline, trainer = _module(kind), _trainer(tmp_path, [])
    trainer.fit(baseline, datamodule=data)
    trainer.test(baseline, datamodule=data, verbose=False)
    baseline_dir = Path(trainer.log_dir or tmp_path) / "evoaug"
    # The run: the same, with EvoAugCallback.
    pl.seed_everything(0, verbose=False)
    callback = EvoAugCallback(
        objectives=("accuracy", "fairness", "diversity"),
        population_size=4,
        lookahead_steps=3,
        lookahead_batch_size=16,
        train_probe_size=64,
        val_probe_size=64,
        n_subpolicies=2,
        n_genes=1,
        min_generations=2,
        seed=0,
    )
    module, trainer = _module(kind), _trainer(tmp_path, [callback])
    trainer.fit(module, datamodule=data)
    trainer.test(module, datamodule=data, verbose=False)
    run_dir = Path(trainer.log_dir or tmp_path) / "evoaug"
    assert run_dir != baseline_dir
    for name in ("history.jsonl", "best_policy.yaml", "timeline.jsonl", "run.json", "samples.pt"):
        assert (run_dir / name).is_file(), name

    html_path, md_path, json_path = write_report(run_dir, baselines=[baseline_dir], n_bootstrap=300)

    report = json.loads(json_path.read_text())
    metrics = report["metrics"]
    assert [row["group"] for row in metrics["by_group"]] == GROUP_NAMES
    assert metrics["overall"]["count"] == 300
    rows = [line.split(",") for line in (run_dir / "test_predictions.csv").read_text().split()[1:]]
    correct = np.array([r[1] == r[2] for r in rows])
    assert metrics["overall"]["accuracy"] == pytest.approx(correct.mean())
    assert report["summary"]["Dataset"] == "digits"
    assert report["search"]["generations"] >= 2
    assert report["search"]["candidates"] == 4 * report["search"]["generations"]
    assert report["policy"]["source"] == "best_policy.yaml"
    assert report["sensitive_attribute"] == "inverted"
    (entry,) = report["baselines"]
    assert entry["comparison"]["paired"] is True  # same test set, same order
    assert report["findings"][0].startswith(f"Against baseline '{entry['label']}'")
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 5
    assert "Not shown" not in page
    assert "Change against" in page
    assert "inverted" in md_path.read_text()
    _maybe_screenshot(html_path, tmp_path)


def _maybe_screenshot(html_path: Path, tmp_path: Path) -> None:
    target = os.environ.get("EVOAUG_REPORT_SCREENSHOT")
    chromium = shutil.which("chromium")
    if not target or chromium is None:
        return
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,2400",
            f"--screenshot={Path(target).resolve()}",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
