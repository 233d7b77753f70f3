import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

lightning = pytest.importorskip(
    "lightning.pytorch", reason="the `lightning` package is not installed"
)


class Net(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.net(x)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        pass

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_namespace_runs_generations(tmp_path) -> None:
    from evoaug.lightning import EvoAugCallback

    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(64, 1, 4, 4, generator=g), torch.arange(64) % 2)
    cb = EvoAugCallback(
        population_size=4,
        lookahead_steps=2,
        lookahead_batch_size=8,
        train_probe_size=16,
        val_probe_size=16,
        n_subpolicies=1,
        n_genes=1,
        min_generations=1,
    )
    trainer = lightning.Trainer(
        max_epochs=2,
        callbacks=[cb],
        default_root_dir=tmp_path,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    trainer.fit(Net(), DataLoader(data, batch_size=16), DataLoader(data, batch_size=16))
    assert cb.generation == 1
    assert cb.search is not None and cb.search.generation == 1
