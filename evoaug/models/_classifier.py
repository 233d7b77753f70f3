"""Classifier: the LightningModule of evoaug's recipes.

It trains a network from :data:`evoaug.models.MODELS` (or any ``nn.Module``) with cross-entropy,
logs overall and per-group accuracy, and at the end of ``trainer.test`` writes the predictions
the fairness report reads; their format is documented in :mod:`evoaug.models._predictions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy
from typing_extensions import override

from evoaug._run_layout import GROUPS_FROM_CLASSES, GROUPS_FROM_SENSITIVE, RUN_SUBDIR
from evoaug.exceptions import ConfigError, EvoAugError
from evoaug.models._checks import (
    check_choice,
    check_int,
    check_milestones,
    check_positive,
    check_rate,
)
from evoaug.models._datamodule import (
    datamodule_channels,
    datamodule_int,
    names,
    split_batch,
    trainer_datamodule,
)
from evoaug.models._group_metrics import GroupAccuracy
from evoaug.models._optim import (
    OPTIMIZERS,
    SCHEDULERS,
    EpochSchedule,
    build_optimizer,
    default_milestones,
)
from evoaug.models._predictions import PredictionTensors, gather_predictions, write_predictions
from evoaug.models._registry import build_model, check_model_kwargs

__all__ = ["Classifier"]

_NOT_BUILT = (
    "the Classifier's network is not built yet: pass `num_classes` and `in_channels`, or let "
    "the Trainer build it in `setup` from the datamodule"
)


class Classifier(pl.LightningModule):
    """Image classifier with accuracy, per-group accuracy and saved test predictions.

    The network is built from the registry (``model`` and ``model_kwargs``) or given
    (``network``). When ``num_classes`` or ``in_channels`` is None it is read from the Trainer's
    datamodule in :meth:`setup` (``num_classes``; ``in_channels``, ``channels``, or
    ``image_shape[0]``) and the network is built then; the resolved values are stored in
    ``hparams``, so ``Classifier.load_from_checkpoint(path)`` rebuilds the same network (pass
    ``network=`` again when you gave an instance).

    Batches are ``(images, labels)`` or ``(images, labels, groups)``. Groups are the batch's
    groups when present, otherwise the classes (evoaug's ``fairness_groups="auto"``); they are
    named from the datamodule's ``group_names`` or ``class_names``. Logged: ``train_loss``
    (per step), ``train_acc``, ``val_loss``, ``val_acc``, ``val_acc_group/<name>``,
    ``val_worst_group_acc`` and the same for ``test_``; with several validation or test
    loaders, each loader's ``*_loss`` and ``*_acc`` are its own, and the per-group metrics
    describe the first loader, as the test predictions do. Training uses :attr:`loss_fn`
    (cross-entropy with label smoothing); logged validation and test losses are plain
    cross-entropy. Images reach the network as the batches carry them: normalize in the
    datamodule or with ``EvoAugCallback(normalize=...)``, not both.

    At the end of ``trainer.test`` (first test loader) the predictions are gathered from all
    ranks and rank zero writes ``test_predictions.csv`` and ``test_meta.json`` into
    ``<trainer.log_dir or trainer.default_root_dir>/evoaug/``.

    Args:
        model: Name of the network in :data:`evoaug.models.MODELS`.
        model_kwargs: Further arguments of that network (e.g. ``{"width": 16}``); not
            ``num_classes`` or ``in_channels``.
        network: A network instance to train instead of ``model`` (``forward(x) -> logits``).
        num_classes: Number of classes; None: the datamodule's ``num_classes`` (or, with
            ``network``, the ``out_features`` of its last ``nn.Linear``).
        in_channels: Image channels; None: read from the datamodule.
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        lr: Base learning rate.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum (needs ``momentum > 0``).
        weight_decay: Weight decay (decoupled for ``"adamw"``).
        scheduler: ``"cosine"`` (annealed to zero over ``max_epochs``), ``"step"`` (times
            ``gamma`` at each of ``milestones``) or ``"none"``; stepped once per epoch.
        warmup_epochs: Epochs of linear warm-up before the schedule.
        milestones: Epochs of the ``"step"`` schedule; default 30%, 60% and 80% of
            ``max_epochs`` (the Wide-ResNet schedule).
        gamma: Factor of the ``"step"`` schedule.
        label_smoothing: Label smoothing of the training loss, in ``[0, 1)``.

    Raises:
        ConfigError: An argument is of the wrong type or out of range, or an unknown model.

    Example:
        >>> import torch
        >>> clf = Classifier(model="small-cnn", num_classes=10, in_channels=1, lr=0.05)
        >>> clf(torch.rand(2, 1, 32, 32)).shape
        torch.Size([2, 10])

    """

    def __init__(
        self,
        *,
        model: str = "small-cnn",
        model_kwargs: dict[str, Any] | None = None,
        network: nn.Module | None = None,
        num_classes: int | None = None,
        in_channels: int | None = None,
        optimizer: Literal["sgd", "adam", "adamw"] = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 5e-4,
        scheduler: Literal["cosine", "step", "none"] = "cosine",
        warmup_epochs: int = 0,
        milestones: list[int] | None = None,
        gamma: float = 0.2,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.model_kwargs = check_model_kwargs(model, model_kwargs, network)
        self.optimizer_name = check_choice("optimizer", optimizer, OPTIMIZERS)
        self.scheduler_name = check_choice("scheduler", scheduler, SCHEDULERS)
        self.lr, self.momentum = check_positive("lr", lr), check_rate("momentum", momentum)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        if not isinstance(nesterov, bool):
            raise ConfigError(f"`nesterov` must be a bool, got {nesterov!r}")
        if nesterov and optimizer == "sgd" and momentum <= 0:
            raise ConfigError(f"`nesterov=True` needs `momentum` > 0, got momentum={momentum!r}")
        self.nesterov = nesterov
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0)
        self.milestones = check_milestones(milestones)
        self.gamma = check_positive("gamma", gamma)
        label_smoothing = check_rate("label_smoothing", label_smoothing)
        self.num_classes = None if num_classes is None else check_int("num_classes", num_classes, 2)
        self.in_channels = None if in_channels is None else check_int("in_channels", in_channels, 1)
        self.model_name = model if network is None else _class_name(network)
        self.save_hyperparameters(ignore=["network"])

        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        """The training loss; pass it to ``EvoAugCallback(loss_fn=...)`` for the look-ahead."""
        self.network: nn.Module | None = network
        self.groups_source: str | None = None
        self._test_parts: list[PredictionTensors] = []
        if network is None and self.num_classes is not None and self.in_channels is not None:
            self.network = self._build_network()
        if self.network is not None and self.num_classes is not None:
            self._build_metrics(self.num_classes)

    # ------------------------------------------------------------------ building

    def _build_network(self) -> nn.Module:
        kwargs = {**self.model_kwargs}
        kwargs.update(num_classes=self.num_classes, in_channels=self.in_channels)
        return build_model(self.model_name, **kwargs)

    def _build_metrics(self, num_classes: int) -> None:
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_groups = GroupAccuracy()
        self.test_groups = GroupAccuracy()

    @override
    def setup(self, stage: str) -> None:
        """Resolve ``num_classes`` and ``in_channels`` from the datamodule; build the network."""
        datamodule = trainer_datamodule(self.trainer)
        known = datamodule_int(datamodule, "num_classes")
        if self.num_classes is None:
            self.num_classes = known
            if self.num_classes is None and self.network is not None:
                self.num_classes = _out_features(self.network)
        elif known is not None and known != self.num_classes:
            raise ConfigError(
                f"`num_classes` is {self.num_classes} but the datamodule has {known} classes; "
                "leave `num_classes` unset to use the datamodule's"
            )
        if self.num_classes is None:
            raise ConfigError(
                "`num_classes` is None and the Trainer has no datamodule with `num_classes`; "
                "pass `num_classes`"
            )
        outputs = None if self.network is None else _out_features(self.network)
        if outputs is not None and outputs != self.num_classes:
            raise ConfigError(
                f"`network` ends in {outputs} outputs but there are {self.num_classes} classes"
            )
        if self.network is None:
            if self.in_channels is None:
                self.in_channels = datamodule_channels(datamodule)
            if self.in_channels is None:
                raise ConfigError(
                    "`in_channels` is None and the Trainer has no datamodule with `in_channels` "
                    "(or `image_shape`); pass `in_channels`"
                )
            self.network = self._build_network()
        if not hasattr(self, "test_acc"):
            self._build_metrics(self.num_classes)
        self.hparams.update(num_classes=self.num_classes, in_channels=self.in_channels)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's logits ``[B, num_classes]`` of images ``[B, C, H, W]``."""
        if self.network is None:
            raise EvoAugError(_NOT_BUILT)
        out: torch.Tensor = self.network(x)
        return out

    @override
    def configure_optimizers(self) -> Any:
        """The optimizer and, unless ``scheduler="none"`` without warm-up, a per-epoch LambdaLR."""
        if self.network is None:
            raise EvoAugError(_NOT_BUILT)
        optimizer = build_optimizer(
            self.optimizer_name,
            self.parameters(),
            lr=self.lr,
            momentum=self.momentum,
            nesterov=self.nesterov and self.optimizer_name == "sgd",
            weight_decay=self.weight_decay,
        )
        if self.scheduler_name == "none" and self.warmup_epochs == 0:
            return optimizer
        max_epochs = self.trainer.max_epochs
        if self.scheduler_name != "none" and (max_epochs is None or max_epochs < 1):
            raise ConfigError(
                f"`scheduler={self.scheduler_name!r}` needs the Trainer's `max_epochs`, got "
                f"{max_epochs!r}; set `max_epochs` or use scheduler='none'"
            )
        epochs = max(max_epochs or 1, 1)
        schedule = EpochSchedule(
            self.scheduler_name,
            max_epochs=epochs,
            warmup_epochs=self.warmup_epochs,
            milestones=self.milestones or default_milestones(epochs),
            gamma=self.gamma,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    # ------------------------------------------------------------------ steps

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, _ = split_batch(batch)
        logits = self(x)
        loss: torch.Tensor = self.loss_fn(logits, y)
        self.train_acc(logits.argmax(1), y)
        self.log("train_loss", loss, batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def _evaluate(
        self,
        batch: Any,
        stage: str,
        accuracy: MulticlassAccuracy,
        groups_metric: GroupAccuracy,
        dataloader_idx: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, g = split_batch(batch)
        groups = y if g is None else g
        logits = self(x)
        preds = logits.argmax(1)
        self.log(f"{stage}_loss", F.cross_entropy(logits, y), batch_size=len(y))
        if dataloader_idx == 0:
            # The first loader's: the per-group metrics and the test predictions describe it.
            self.groups_source = GROUPS_FROM_CLASSES if g is None else GROUPS_FROM_SENSITIVE
            accuracy(preds, y)
            groups_metric.update(preds, y, groups)
            self.log(f"{stage}_acc", accuracy, batch_size=len(y))
        else:  # another loader's own accuracy (the mean over its batches, weighted by size)
            self.log(f"{stage}_acc", (preds == y).float().mean(), batch_size=len(y))
        return logits, preds, y, groups

    @override
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, "val", self.val_acc, self.val_groups, dataloader_idx)

    @override
    def on_test_epoch_start(self) -> None:
        self._test_parts = []

    @override
    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        logits, preds, y, groups = self._evaluate(
            batch, "test", self.test_acc, self.test_groups, dataloader_idx
        )
        if dataloader_idx == 0:
            confidence = logits.detach().float().softmax(1).amax(1)
            self._test_parts.append(
                PredictionTensors(y.detach(), preds, groups.detach(), confidence)
            )

    @override
    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Logits of the batch's images (a batch may be images alone)."""
        images = batch if isinstance(batch, torch.Tensor) else split_batch(batch)[0]
        logits: torch.Tensor = self(images)
        return logits

    # ------------------------------------------------------------------ epoch ends

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_groups("val", self.val_groups)

    @override
    def on_test_epoch_end(self) -> None:
        self._log_groups("test", self.test_groups)
        predictions = gather_predictions(
            self, PredictionTensors.concat(self._test_parts, self.device)
        )
        self._test_parts = []
        run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir) / RUN_SUBDIR
        if self.trainer.is_global_zero:
            write_predictions(run_dir, predictions, self._meta(predictions))

    def _group_names(self, minimum: int) -> list[str]:
        datamodule = trainer_datamodule(self.trainer)
        if self.groups_source == GROUPS_FROM_SENSITIVE:
            return names(getattr(datamodule, "group_names", None), minimum)
        return names(getattr(datamodule, "class_names", None), max(minimum, self.num_classes or 0))

    def _log_groups(self, stage: str, metric: GroupAccuracy) -> None:
        if metric.update_count == 0:
            return
        accuracies = metric.compute()
        metric.reset()
        labels = self._group_names(max(accuracies) + 1)
        for group, value in accuracies.items():
            label = labels[group] if group >= 0 else str(group)
            self.log(f"{stage}_acc_group/{label}", value, sync_dist=True)
        self.log(f"{stage}_worst_group_acc", min(accuracies.values()), sync_dist=True)

    def _meta(self, predictions: PredictionTensors) -> dict[str, Any]:
        datamodule = trainer_datamodule(self.trainer)
        num_classes = self.num_classes or 0
        observed = int(predictions.group.max()) + 1 if len(predictions) else 0
        describe = getattr(datamodule, "describe", None)
        return {
            "num_classes": num_classes,
            "class_names": names(getattr(datamodule, "class_names", None), num_classes),
            "groups_source": self.groups_source or GROUPS_FROM_CLASSES,
            "group_names": self._group_names(observed),
            "sensitive_attribute": getattr(datamodule, "sensitive_attribute", None),
            "dataset": describe() if callable(describe) else None,
            "model": self.model_name,
            "num_params": sum(p.numel() for p in self.network.parameters()) if self.network else 0,
            "epoch": self.trainer.current_epoch,
            "global_step": self.trainer.global_step,
        }


def _class_name(network: nn.Module) -> str:
    cls = type(network)
    return f"{cls.__module__}.{cls.__qualname__}"


def _out_features(network: nn.Module) -> int | None:
    linear = [m for m in network.modules() if isinstance(m, nn.Linear)]
    return linear[-1].out_features if linear else None
