import torch
from torch.utils.data import DataLoader

import evoaug
from evoaug import EvoAugCallback, Policy

INVERT = Policy.from_genes([[("Invert", 1.0, 0.0)]])


def test_dataset_mode_swap_reaches_persistent_workers(tmp_path, lt) -> None:
    cb = EvoAugCallback(
        mode="dataset",
        objectives=("accuracy",),
        every_n_epochs=1,
        **{**lt.SMALL, "min_generations": 0},
    )
    data = lt.make_data(n=32)
    clean = torch.stack([data[i][0] for i in range(len(data))])
    loader = DataLoader(
        cb.wrap_dataset(data), batch_size=16, num_workers=2, persistent_workers=True
    )

    swapped_at = {}

    class Swap(lt.TinyNet):
        def on_train_epoch_end(self) -> None:
            # after the callback's generation at the end of epoch 0, force a known policy
            if self.current_epoch == 0:
                cb._set_active(INVERT)
                swapped_at["epoch"] = 0

    model = Swap()
    lt.trainer(tmp_path, [cb], max_epochs=2).fit(model, loader, lt.loaders()[1])
    assert swapped_at == {"epoch": 0}
    epoch0 = torch.cat(model.seen[:2])
    epoch1 = torch.cat(model.seen[2:])
    # epoch 0 trains on clean images (identity), epoch 1 on inverted ones, read from the workers
    assert all(any(torch.allclose(x, c) for c in clean) for x in epoch0)
    assert all(any(torch.allclose(x, 1 - c) for c in clean) for x in epoch1)


def test_dataset_mode_requires_wrapped_dataset(tmp_path, lt) -> None:
    cb = EvoAugCallback(mode="dataset", **lt.SMALL)
    train, val = lt.loaders()
    import pytest

    with pytest.raises(
        evoaug.ConfigError, match=r"`mode='dataset'` needs the training dataset wrapped"
    ):
        lt.trainer(tmp_path, [cb], max_epochs=2).fit(lt.TinyNet(), train, val)


def test_normalize_applies_after_augmentation_to_every_stage(tmp_path, lt) -> None:
    seen_val = []

    class Net(lt.TinyNet):
        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            seen_val.append(batch[0].detach().clone())
            return super().validation_step(batch, batch_idx)

    cb = EvoAugCallback(
        initial_policy=INVERT, normalize=((0.5,), (0.5,)), objectives=("accuracy",), **lt.SMALL
    )
    train, val = lt.loaders()
    model = Net()
    lt.trainer(tmp_path, [cb], max_epochs=1, limit_train_batches=1).fit(model, train, val)
    clean_train = torch.cat([x for x, _ in train])
    clean_val = torch.cat([x for x, _ in val])
    x = model.seen[0][0]
    assert any(torch.allclose(x, ((1 - c) - 0.5) / 0.5, atol=1e-6) for c in clean_train)
    assert torch.allclose(seen_val[0], (clean_val[: len(seen_val[0])] - 0.5) / 0.5)


def test_datamodule_hook_and_normalized_test_stage(tmp_path, lt) -> None:
    """With a datamodule, the callback wraps the hook Lightning calls (no warning), and test
    batches are normalized like training batches."""
    import pytorch_lightning as pl

    train, val = lt.loaders()

    class DM(pl.LightningDataModule):
        def train_dataloader(self):  # type: ignore[no-untyped-def]
            return train

        def val_dataloader(self):  # type: ignore[no-untyped-def]
            return val

        def test_dataloader(self):  # type: ignore[no-untyped-def]
            return val

    seen_test = []

    class Net(lt.TinyNet):
        def test_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            seen_test.append(batch[0].detach().clone())

    cb = EvoAugCallback(normalize=((0.5,), (0.25,)), **lt.SMALL)
    model, dm = Net(), DM()
    trainer = lt.trainer(tmp_path, [cb], max_epochs=2)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    clean = torch.cat([x for x, _ in val])
    assert torch.allclose(torch.cat(seen_test), (clean - 0.5) / 0.25)
    assert "on_after_batch_transfer" not in vars(dm)  # unwrapped after teardown
    assert "on_after_batch_transfer" not in vars(model)
    # Tested with plain loaders after a fit with a datamodule: Lightning calls the module's
    # hook now (trainer.datamodule still names the old datamodule), and the batches are
    # normalized all the same.
    seen_test.clear()
    trainer.test(model, dataloaders=val, verbose=False)
    assert torch.allclose(torch.cat(seen_test), (clean - 0.5) / 0.25)


def test_a_failed_fit_unwraps_the_batch_hook(tmp_path, lt) -> None:
    """Lightning skips teardown when fit raises: the hook must not outlive the callback."""
    import pytest
    from pytorch_lightning.callbacks import Callback

    class Boom(Callback):
        def on_train_epoch_start(self, trainer, pl_module):  # type: ignore[no-untyped-def]
            raise RuntimeError("interrupted")

    seen = []

    class Net(lt.TinyNet):
        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            seen.append(batch[0].detach().clone())

    train, val = lt.loaders()
    model = Net()
    cb = EvoAugCallback(search=False, normalize=((0.5,), (0.25,)))
    with pytest.raises(RuntimeError, match="interrupted"):
        lt.trainer(tmp_path, [cb, Boom()], max_epochs=1).fit(model, train, val)
    assert "on_after_batch_transfer" not in vars(model)
    # A plain Trainer afterwards sees the raw batches, not normalized ones.
    lt.trainer(tmp_path, [], max_epochs=1).validate(model, val, verbose=False)
    assert torch.equal(torch.cat(seen), torch.cat([x for x, _ in val]))


def test_predict_batches_of_images_alone_are_normalized(tmp_path, lt) -> None:
    from torch.utils.data import TensorDataset

    seen = []

    class Net(lt.TinyNet):
        def predict_step(self, batch, batch_idx, dataloader_idx=0):  # type: ignore[no-untyped-def]
            x = batch if isinstance(batch, torch.Tensor) else batch[0]
            seen.append(x.detach().clone())
            return self(x)

    train, val = lt.loaders()
    model = Net()
    trainer = lt.trainer(tmp_path, [EvoAugCallback(search=False, normalize=((0.5,), (0.25,)))])
    trainer.fit(model, train, val)
    images = torch.rand(8, 1, 8, 8)
    for loader in (
        DataLoader(images, batch_size=4),
        DataLoader(TensorDataset(images), batch_size=4),
    ):
        seen.clear()
        assert len(trainer.predict(model, loader)) == 2
        assert torch.allclose(torch.cat(seen), (images - 0.5) / 0.25)
