"""evoaug/callback/_lightning.py: both namespaces, and the Lightning internals it reads.

When a Lightning release moves one of the internals, the first test here names it: update
`_lightning.py` (and its fallback), then `TESTED_LIGHTNING` and pyproject's range.
"""

import importlib
from importlib import metadata

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import evoaug
from evoaug.callback import _lightning

NAMESPACES = ["pytorch_lightning", "lightning.pytorch"]


def tiny_fit(namespace: str, tmp_path, callbacks=(), **kwargs):  # type: ignore[no-untyped-def]
    L = pytest.importorskip(namespace, reason=f"{namespace} is not installed")

    class Net(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            x, y = batch
            return torch.nn.functional.cross_entropy(self.layer(x.flatten(1)), y)

        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            pass

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = TensorDataset(torch.rand(16, 1, 2, 2), torch.arange(16) % 2)
    trainer = L.Trainer(
        max_epochs=1,
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        **kwargs,
    )
    module = Net()
    trainer.fit(module, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    return trainer, module


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_the_internals_evoaug_reads_are_where_it_reads_them(namespace, tmp_path) -> None:
    trainer, _ = tiny_fit(namespace, tmp_path)
    version = metadata.version(namespace.split(".")[0].replace("_", "-"))
    missing = _lightning.missing_internals(trainer)
    assert missing == [], (
        f"{namespace} {version} moved {missing}, which evoaug/callback/_lightning.py reads "
        f"(checked against Lightning {_lightning.TESTED_LIGHTNING}): update it and its fallback"
    )
    assert _lightning.trained_epochs(trainer, fallback=-7) == 0  # the one epoch, fully trained
    assert _lightning.setup_val_dataloaders(trainer) is not None


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_one_callback_class_for_both_namespaces(namespace, tmp_path) -> None:
    L = pytest.importorskip(namespace, reason=f"{namespace} is not installed")
    assert issubclass(evoaug.EvoAugCallback, L.Callback)
    trainer, _ = tiny_fit(namespace, tmp_path)
    assert _lightning.namespace(trainer) is importlib.import_module(namespace)


def test_fallbacks_when_lightning_moves_its_internals() -> None:
    class Bare:
        val_dataloaders = None

    assert _lightning.missing_internals(Bare()) == list(_lightning.INTERNALS)
    assert _lightning.trained_epochs(Bare(), fallback=3) == 3
    assert _lightning.setup_val_dataloaders(Bare()) is None


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_detached_trainer_gives_the_trainer_back(namespace, tmp_path) -> None:
    trainer, module = tiny_fit(namespace, tmp_path)
    with (
        _lightning.detached_trainer(module),
        pytest.raises(RuntimeError, match="not attached to a `Trainer`"),
    ):
        _ = module.trainer
    assert module.trainer is trainer
