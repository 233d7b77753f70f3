"""The callback inside less plain training setups: mixed precision, accumulation, several
validation loaders, dict batches, schedulers."""

import torch
from torch.utils.data import DataLoader

from evoaug import Evaluator, EvoAugCallback, search


def test_mixed_precision_and_gradient_accumulation(tmp_path, lt) -> None:
    cb = EvoAugCallback(**lt.SMALL)
    train, val = lt.loaders()
    lt.trainer(tmp_path, [cb], max_epochs=3, precision="bf16-mixed", accumulate_grad_batches=2).fit(
        lt.TinyNet(), train, val
    )
    assert cb.generation == 2
    records, _ = search.read_history(tmp_path / "logs" / "version_0" / "evoaug" / "history.jsonl")
    assert all(r["failure"] is None for r in records)


def test_second_validation_loader_is_used_when_configured(tmp_path, lt) -> None:
    class Net(lt.TinyNet):
        def validation_step(self, batch, batch_idx, dataloader_idx=0):  # type: ignore[no-untyped-def]
            return super().validation_step(batch, batch_idx)

    cb = EvoAugCallback(val_dataloader_idx=1, **lt.SMALL)
    train, val = lt.loaders()
    grouped = DataLoader(lt.make_data(seed=2, groups=True), batch_size=32)
    lt.trainer(tmp_path, [cb], max_epochs=2).fit(Net(), train, [val, grouped])
    assert cb.groups_source == "sensitive attribute"  # only the second loader has groups


def test_dict_batches_with_custom_keys(tmp_path, lt) -> None:
    data = lt.make_data(groups=True)
    rows = [{"pixels": x, "target": y, "race": g} for x, y, g in data]

    class Net(lt.TinyNet):
        def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            return super().training_step((batch["pixels"], batch["target"]), batch_idx)

        def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
            return super().validation_step((batch["pixels"], batch["target"]), batch_idx)

    cb = EvoAugCallback(
        batch_keys={"image": "pixels", "label": "target", "group": "race"}, **lt.SMALL
    )
    loader = DataLoader(rows, batch_size=16)
    lt.trainer(tmp_path, [cb], max_epochs=2).fit(Net(), loader, loader)
    assert cb.generation == 2  # min_generations=2, both at the end of epoch 0
    assert cb.groups_source == "sensitive attribute"


def test_lookahead_reads_the_scheduled_learning_rate(tmp_path, lt, monkeypatch) -> None:
    seen = []

    class Net(lt.TinyNet):
        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]

    cb = EvoAugCallback(every_n_epochs=1, **lt.SMALL)
    original = Evaluator.evaluate

    def spy(self, model, loss_fn, optimizer, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(optimizer.lr)
        return original(self, model, loss_fn, optimizer, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate", spy)
    train, val = lt.loaders()
    lt.trainer(tmp_path, [cb], max_epochs=3).fit(Net(), train, val)
    # generations at the ends of epochs 0 and 1; the scheduler halves the rate each epoch
    assert seen == [0.05, 0.025]
