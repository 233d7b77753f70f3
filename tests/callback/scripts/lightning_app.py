"""A user's LightningCLI training script, in the shape of Lightning's own examples.

It knows nothing of evoaug: tests/callback/test_callback_scripts.py adds the callback from the
command line, as the CLI teaches (``--trainer.callbacks+=evoaug.EvoAugCallback``). The Lightning
namespace comes from LIGHTNING_NAMESPACE: ``lightning.pytorch`` (the ``lightning`` package) or
``pytorch_lightning``. Batches are ``(x, y)`` of ``ToTensor`` images, or dicts with
``--data.dict_batches true``; ``--model.own_hook true`` gives the module its own
``on_after_batch_transfer``. The script prints what the test checks: the mean pixel of the first
training batch, the smallest pixel value a test batch reached, how many predictions it made, and
how many batches went through the module's own hook.
"""

import importlib
import os

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, random_split
from torchvision import transforms

L = importlib.import_module(os.environ.get("LIGHTNING_NAMESPACE", "lightning.pytorch"))
cli_module = importlib.import_module(L.__name__ + ".cli")


class Shapes(Dataset):
    """Synthetic PIL images of two classes (a bright square or a bright bar) through ToTensor."""

    def __init__(self, n: int, *, dict_batches: bool = False) -> None:
        from PIL import Image

        g = torch.Generator().manual_seed(n)
        self.images, self.labels = [], []
        for i in range(n):
            array = (torch.rand(16, 16, 3, generator=g) * 80).to(torch.uint8)
            label = i % 2
            if label:
                array[4:12, 4:12] = 220
            else:
                array[7:9, :] = 220
            self.images.append(Image.fromarray(array.numpy()))
            self.labels.append(label)
        self.transform = transforms.ToTensor()
        self.dict_batches = dict_batches

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image, label = self.transform(self.images[index]), self.labels[index]
        return {"img": image, "target": label} if self.dict_batches else (image, label)


class ShapesDataModule(L.LightningDataModule):
    def __init__(self, batch_size: int = 16, dict_batches: bool = False) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.dict_batches = dict_batches

    def setup(self, stage: str) -> None:
        full = Shapes(160, dict_batches=self.dict_batches)
        self.train, self.val = random_split(full, [128, 32], torch.Generator().manual_seed(0))
        self.test = Shapes(48, dict_batches=self.dict_batches)

    def train_dataloader(self):
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val, batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)

    def predict_dataloader(self):
        return DataLoader(self.test, batch_size=self.batch_size)


class LitClassifier(L.LightningModule):
    def __init__(self, lr: float = 1e-3, own_hook: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(8 * 16, 2),
        )
        self.hooked_batches = 0
        self.first_train_mean: float | None = None
        self.test_min = float("inf")

    def forward(self, x):
        return self.net(x)

    def _split(self, batch):
        if isinstance(batch, dict):
            return batch["img"], batch["target"]
        return batch

    def on_after_batch_transfer(self, batch, dataloader_idx):
        if self.hparams.own_hook:
            self.hooked_batches += 1
        return batch

    def training_step(self, batch, batch_idx):
        x, y = self._split(batch)
        if self.first_train_mean is None:
            self.first_train_mean = float(x.mean())
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = self._split(batch)
        self.log("val_loss", F.cross_entropy(self(x), y))

    def test_step(self, batch, batch_idx):
        x, y = self._split(batch)
        self.test_min = min(self.test_min, float(x.min()))
        self.log("test_acc", (self(x).argmax(1) == y).float().mean())

    def predict_step(self, batch, batch_idx):
        x, _ = self._split(batch)
        return self(x).argmax(1)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main() -> None:
    cli = cli_module.LightningCLI(LitClassifier, ShapesDataModule, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(ckpt_path="best", datamodule=cli.datamodule)
    predictions = cli.trainer.predict(ckpt_path="best", datamodule=cli.datamodule)
    print("FIRST_TRAIN_MEAN", cli.model.first_train_mean)
    print("TEST_MIN", cli.model.test_min)
    print("PREDICTED", sum(len(p) for p in predictions))
    print("HOOKED", cli.model.hooked_batches)


if __name__ == "__main__":
    main()
