"""EvoAugCallback: online policy search inside a Lightning Trainer."""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.model_helpers import is_overridden
from typing_extensions import override

from evoaug.callback._batch import BatchLayout
from evoaug.callback._config import CallbackConfig
from evoaug.callback._data import collect_samples, write_samples
from evoaug.callback._distributed import all_gather_objects, check_identical, merge_shards, shard
from evoaug.callback._runinfo import (
    RUN_FILE,
    TIMELINE_FILE,
    append_timeline,
    truncate_timeline,
    write_run_info,
)
from evoaug.callback._schedule import FORWARD_COST, Schedule, plan_schedule
from evoaug.evaluate import CandidateResult, Evaluator, OptimizerSpec, Probe, stratified_probe
from evoaug.exceptions import ConfigError, EvoAugError
from evoaug.genome import GenomeSpace
from evoaug.pipeline import AugmentedDataset, BatchAugmenter, Normalize, PolicySlot
from evoaug.policy import Policy, SubPolicy
from evoaug.search import (
    HISTORY_FILE,
    HistoryWriter,
    Search,
    get_selection,
    history_record,
    write_best_policy,
    write_pareto,
)

__all__ = ["EvoAugCallback"]

_STATE_VERSION = 1


class EvoAugCallback(pl.Callback):
    """Search augmentation policies with NSGA-II while the model trains; train with the best.

    At the end of scheduled epochs the callback runs a generation: every candidate policy is
    scored on the live model (look-ahead on an isolated copy, see :class:`evoaug.evaluate.
    Evaluator`), NSGA-II proposes the next candidates, and the selection rule picks the policy the
    next epochs train with. Generations are planned from ``search_budget`` (the fraction of the
    run's training batches the search may spend) and logged at the start.

    Args:
        objectives: Objectives to optimize, all "higher is better".
        population_size: Candidates per generation (P).
        search_budget: Fraction of the run's training batches the search may spend.
        every_n_epochs: One generation every n epochs instead of the budget.
        min_generations: At least this many generations, whatever the budget.
        warmup_epochs: Epochs trained with ``initial_policy`` before the first generation.
        lookahead_steps: k, optimizer steps of each candidate's look-ahead.
        lookahead_batch_size: Look-ahead minibatch size.
        lookahead_repeats: Score each candidate this many times with different seeds and
            average (:class:`~evoaug.evaluate.Evaluator`'s ``repeats``): less noise, more cost;
            the schedule prices a generation at ``repeats`` times P·k steps.
        train_probe_size: Training images drawn for look-ahead and difficulty/diversity.
        val_probe_size: Validation images (stratified by group) for accuracy and fairness.
        selection: ``"weights"`` (default), ``"knee"``, ``"constraint"`` or a
            :class:`evoaug.search.Selection`.
        mode: ``"batch"``: augment each batch on its device in the training loop;
            ``"dataset"``: augment per sample in DataLoader workers (wrap your training dataset
            with :meth:`wrap_dataset`).
        fairness_groups: ``"auto"`` uses the batches' groups when they carry some, else the
            classes; ``"sensitive"`` requires groups; ``"class"`` always uses the classes.
        fairness_metric: See :class:`evoaug.objectives.Fairness`.
        batch_keys: Where images, labels and groups sit in a batch, e.g.
            ``{"image": "x", "label": "y", "group": "race"}`` or positions for tuples.
        normalize: Applied after augmentation to every batch (train, val, test): ``(mean, std)``,
            a callable, or ``"datamodule"`` for the attached datamodule's ``normalization``
            attribute (evoaug's datamodules have one). Remove normalization from your dataset
            transforms when you set it.
        search: ``False`` trains with ``initial_policy`` throughout, without any generation:
            the same pipeline as the search, for fixed-policy baselines.
        loss_fn: Loss of the look-ahead; default: cross-entropy on the module's outputs.
        initial_policy: Policy used until the first generation (a Policy, preset or file).
        initial_presets: Presets placed in the first population.
        n_subpolicies: Sub-policies per searched policy (K).
        n_genes: Genes per sub-policy (L).
        ops: Op vocabulary of the search; default: all built-in ops.
        interpolation: How the warps of every policy the callback trains with resample,
            ``"bilinear"`` or ``"nearest"`` (torchvision's auto-augment default; on ``uint8``
            batches it skips the float conversion). Default: the initial policy's.
        val_dataloader_idx: Which validation loader provides the validation probe.
        feature_layer: Module whose input is the feature vector for diversity.
        seed: Seed of everything the callback draws (probes, search, augmentation).

    Example:
        >>> import pytorch_lightning as pl
        >>> cb = EvoAugCallback(population_size=8, lookahead_steps=5, seed=0)
        >>> trainer = pl.Trainer(callbacks=[cb], max_epochs=1, logger=False,
        ...                      enable_checkpointing=False, enable_progress_bar=False,
        ...                      enable_model_summary=False)
        >>> cb.best_policy.name
        'identity'
    """

    def __init__(
        self,
        *,
        objectives: Sequence[str] = ("accuracy", "difficulty", "diversity", "fairness"),
        population_size: int = 16,
        search_budget: float = 0.2,
        every_n_epochs: int | None = None,
        min_generations: int = 3,
        warmup_epochs: int = 1,
        lookahead_steps: int = 20,
        lookahead_batch_size: int = 32,
        lookahead_repeats: int = 1,
        train_probe_size: int = 512,
        val_probe_size: int = 256,
        selection: Any = "weights",
        mode: str = "batch",
        fairness_groups: str = "auto",
        fairness_metric: str = "worst_group_accuracy",
        batch_keys: Mapping[str, int | str] | None = None,
        normalize: Any = None,
        loss_fn: Callable[..., torch.Tensor] | None = None,
        search: bool = True,
        initial_policy: Policy | str = "identity",
        initial_presets: Sequence[str] = ("identity", "autoaugment-cifar10", "autoaugment-svhn"),
        n_subpolicies: int = 5,
        n_genes: int = 2,
        ops: Sequence[str] | None = None,
        interpolation: str | None = None,
        val_dataloader_idx: int = 0,
        feature_layer: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.config = CallbackConfig(
            objectives=objectives,  # type: ignore[arg-type]
            population_size=population_size,
            search_budget=search_budget,
            every_n_epochs=every_n_epochs,
            min_generations=min_generations,
            warmup_epochs=warmup_epochs,
            lookahead_steps=lookahead_steps,
            lookahead_batch_size=lookahead_batch_size,
            lookahead_repeats=lookahead_repeats,
            train_probe_size=train_probe_size,
            val_probe_size=val_probe_size,
            selection=selection,
            mode=mode,  # type: ignore[arg-type]
            fairness_groups=fairness_groups,
            fairness_metric=fairness_metric,
            batch_keys=batch_keys,  # type: ignore[arg-type]
            normalize=normalize,
            loss_fn=loss_fn,
            search=search,
            initial_policy=initial_policy,  # type: ignore[arg-type]
            initial_presets=tuple(initial_presets),
            n_subpolicies=n_subpolicies,
            n_genes=n_genes,
            ops=ops,  # type: ignore[arg-type]
            interpolation=interpolation,
            val_dataloader_idx=val_dataloader_idx,
            feature_layer=feature_layer,
            seed=seed,
        )
        cfg = self.config
        self.selection = get_selection(selection)
        self.selection.validate(cfg.objectives)
        self.space = GenomeSpace(
            cfg.ops,
            n_subpolicies=cfg.n_subpolicies,
            n_genes=cfg.n_genes,
            interpolation=cfg.initial_policy.interpolation,
        )
        self.slot = PolicySlot(cfg.initial_policy, max_genes=max(4, cfg.n_genes))
        self.augmenter = BatchAugmenter(cfg.initial_policy, seed=cfg.seed)
        self._normalize: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.search: Search | None = None
        self.schedule: Schedule | None = None
        self.run_dir: Path | None = None
        self.generation = 0
        self.groups_source: str | None = None
        self._active = cfg.initial_policy
        self._active_objectives: dict[str, float] = {}
        self._front: list[tuple[Policy, dict[str, float]]] = []
        self._history_lines = 0
        self._epoch_done = -1  # last epoch whose scheduled generations ran
        self._trained_epoch = -1  # last epoch fully trained, as of the restored checkpoint
        self._trainer: pl.Trainer | None = None
        self._pending_state: dict[str, Any] | None = None
        self._layout: BatchLayout | None = None
        self._probes: tuple[Probe, Probe] | None = None
        self._hooked: tuple[Any, Any] | None = None
        self._evaluator: Evaluator | None = None
        self._datasets: list[weakref.ref[AugmentedDataset]] = []
        self._fitted = False  # a fit has started with this callback

    # ------------------------------------------------------------------ public results

    @property
    def best_policy(self) -> Policy:
        """The policy training uses now (after fit: the last one selected)."""
        return self._active

    @property
    def pareto_front(self) -> list[tuple[Policy, dict[str, float]]]:
        """The current Pareto front: ``(policy, objectives)`` pairs, objectives higher-better."""
        return list(self._front)

    def wrap_dataset(self, dataset: Any, **kwargs: Any) -> AugmentedDataset:
        """Wrap a map-style training dataset for ``mode="dataset"`` (reads this callback's slot)."""
        wrapped = AugmentedDataset(dataset, self.slot, seed=self.config.seed, **kwargs)
        self._datasets.append(weakref.ref(wrapped))  # their streams go into checkpoints
        return wrapped

    # ------------------------------------------------------------------ setup

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._normalize = self._resolve_normalize(trainer)
        self.augmenter.normalize = self._normalize
        # Ranks augment different samples: give each its own stream.
        self.augmenter.seed = self.config.seed * 1_000_003 + trainer.global_rank
        # Every stage: validation, test and predict batches need `normalize` too.
        self._install_batch_hook(trainer, pl_module)
        if stage != "fit":
            return
        self._trainer = trainer
        root = trainer.log_dir or trainer.default_root_dir
        self.run_dir = Path(root) / "evoaug"
        if trainer.is_global_zero:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._check_groups_early(trainer)
        objectives = self.config.objectives
        self._evaluator = Evaluator(
            objectives=objectives,
            lookahead_steps=self.config.lookahead_steps,
            batch_size=self.config.lookahead_batch_size,
            repeats=self.config.lookahead_repeats,
            feature_layer=self.config.feature_layer,
            fairness_metric=self.config.fairness_metric,
            normalize=self._normalize,
        )
        initial = [_fit(Policy.preset(n), self.space) for n in self.config.initial_presets]
        seeds = [p for p in dict.fromkeys(initial) if p is not None]
        self.search = Search(
            self.space,
            objectives,
            population_size=self.config.population_size,
            seed=self.config.seed,
            initial_policies=seeds[: self.config.population_size],
        )

    def _resolve_normalize(
        self, trainer: pl.Trainer
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        value = self.config.normalize
        if value != "datamodule":
            return value  # type: ignore[return-value]
        stats = getattr(getattr(trainer, "datamodule", None), "normalization", None)
        if stats is None:
            raise ConfigError(
                "`normalize='datamodule'` needs a datamodule with a `normalization` attribute "
                "((mean, std) per channel); pass `normalize=(mean, std)` instead"
            )
        return Normalize(*stats)

    def _check_groups_early(self, trainer: pl.Trainer) -> None:
        """With ``fairness_groups="sensitive"``, fail now if the batches carry no groups."""
        if "fairness" not in self.config.objectives or self.config.fairness_groups != "sensitive":
            return
        try:
            loader = trainer.fit_loop._data_source.dataloader()
            dataset = loader.dataset
            while isinstance(dataset, AugmentedDataset):
                dataset = dataset.dataset
            batch = loader.collate_fn([dataset[0]])
        except Exception:  # an unusual data source: checked again at the first generation
            return
        layout = BatchLayout.infer(batch, self.config.batch_keys)
        if layout.group is None:
            raise ConfigError(_NO_GROUPS)

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None
        elif self._fitted:
            raise ConfigError(
                "this EvoAugCallback has already run a fit: a second fit would build a new "
                "search under the old one's counters. Use a new callback for a new run, or "
                "resume the first one from a checkpoint (`trainer.fit(..., ckpt_path=...)`)"
            )
        elif trainer.is_global_zero and self.run_dir is not None:
            _clear_earlier_run(self.run_dir)
        self._fitted = True
        self._set_active(self._active)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.config.mode == "dataset":
            dataset = getattr(trainer.train_dataloader, "dataset", None)
            if not (isinstance(dataset, AugmentedDataset) and dataset.slot is self.slot):
                raise ConfigError(
                    "`mode='dataset'` needs the training dataset wrapped by this callback: "
                    "`train_set = callback.wrap_dataset(train_set)` before building the "
                    f"DataLoader; got {type(dataset).__name__}. Or use mode='batch'."
                )
        max_epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else None
        batches = (
            int(trainer.num_training_batches) if trainer.num_training_batches != float("inf") else 0
        )
        if max_epochs is None or batches == 0:
            if self.config.every_n_epochs is None:
                raise ConfigError(
                    "cannot plan generations from `search_budget` without `max_epochs` and a "
                    "sized training loader; set `every_n_epochs`"
                )
            max_epochs = max_epochs or 10**6
        train_batch = getattr(trainer.train_dataloader, "batch_size", None) or 1
        scoring = (
            0
            if self._evaluator is None  # set up in `setup("fit")`, which Lightning runs first
            else self._evaluator.scoring_images(
                train_probe=self.config.train_probe_size, val_probe=self.config.val_probe_size
            )
        )
        self.schedule = plan_schedule(
            max_epochs=max_epochs,
            batches_per_epoch=max(batches, 1),
            population_size=self.config.population_size,
            lookahead_steps=self.config.lookahead_steps,
            lookahead_batch_fraction=self.config.lookahead_batch_size / train_batch,
            scoring_batch_fraction=scoring * FORWARD_COST / train_batch,
            repeats=self.config.lookahead_repeats,
            search_budget=self.config.search_budget,
            every_n_epochs=self.config.every_n_epochs,
            warmup_epochs=self.config.warmup_epochs,
            min_generations=self.config.min_generations,
        )
        if not self.config.search:
            self.schedule = Schedule({}, self.schedule.train_batches, 0, note="Search disabled.")
        rank_zero_info(self.schedule.describe())
        if trainer.is_global_zero and self.run_dir is not None:
            write_run_info(self.run_dir, self._run_info(trainer))
        # A checkpoint saved at validation end precedes that epoch's generations: run them now,
        # on the same weights they would have seen, and record the epoch in the timeline.
        for epoch in range(self._epoch_done + 1, self._trained_epoch + 1):
            if not self.config.search:
                break
            self._run_epoch_generations(trainer, pl_module, epoch)
            self._record_timeline(trainer, epoch)

    # ------------------------------------------------------------------ batch mode

    def _install_batch_hook(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Wrap ``on_after_batch_transfer`` of the object Lightning calls it on.

        Lightning calls the datamodule's hook when the datamodule overrides it, else the module's
        (warning when the module overrides it while a datamodule is attached). Patching the
        object Lightning would pick anyway keeps the user's hook and adds no warning.
        """
        if self._hooked is not None:
            return
        hook = "on_after_batch_transfer"
        # The datamodule of this stage's call: `trainer.datamodule` keeps an earlier call's
        # (fit with a datamodule, then test with plain loaders), Lightning's hook selector not.
        selector = getattr(getattr(trainer, "_data_connector", None), "_datahook_selector", None)
        if selector is not None and hasattr(selector, "datamodule"):
            datamodule = selector.datamodule
        else:
            datamodule = getattr(trainer, "datamodule", None)
        target: Any = pl_module
        if datamodule is not None and (
            is_overridden(hook, datamodule) or not is_overridden(hook, pl_module)
        ):
            target = datamodule
        original = getattr(target, hook)
        callback = self

        def on_after_batch_transfer(batch: Any, dataloader_idx: int) -> Any:
            batch = original(batch, dataloader_idx)
            return callback._transform_batch(trainer, batch)

        setattr(target, hook, on_after_batch_transfer)
        self._hooked = (target, original)

    def _transform_batch(self, trainer: pl.Trainer, batch: Any) -> Any:
        training = trainer.training and not trainer.sanity_checking
        if not training:
            return batch if self._normalize is None else self._normalize_batch(batch)
        layout = self._layout or BatchLayout.infer(batch, self.config.batch_keys)
        self._layout = layout
        images, _, _ = layout.split(batch)
        # Dataset mode: the loader's workers augmented the images already.
        augment = self.augmenter if self.config.mode == "batch" else self._normalized
        return layout.with_images(batch, augment(images))

    def _normalize_batch(self, batch: Any) -> Any:
        """A validation, test or predict batch with its images normalized.

        Such a batch may be images alone (predict), as a tensor or a one-element tuple or list;
        otherwise its own layout is read (it need not be the training batches').
        """
        if isinstance(batch, torch.Tensor):
            return self._normalized(batch)
        if isinstance(batch, (tuple, list)) and len(batch) == 1:
            (images,) = batch
            if isinstance(images, torch.Tensor):
                normalized = self._normalized(images)
                return (normalized,) if isinstance(batch, tuple) else [normalized]
        layout = BatchLayout.infer(batch, self.config.batch_keys)
        images, _, _ = layout.split(batch)
        return layout.with_images(batch, self._normalized(images))

    def _normalized(self, images: torch.Tensor) -> torch.Tensor:
        """Images as float (uint8 divided by 255), then normalized when ``normalize`` is set."""
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return images if self._normalize is None else self._normalize(images)

    def _remove_batch_hook(self) -> None:
        if self._hooked is not None:
            target, original = self._hooked
            if getattr(type(target), "on_after_batch_transfer", None) is getattr(
                original, "__func__", None
            ):
                del target.on_after_batch_transfer  # back to the class's own method
            else:
                target.on_after_batch_transfer = original
            self._hooked = None

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._remove_batch_hook()

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning skips teardown when a stage fails or is interrupted: unwrap the hook here,
        # so that the model does not go on normalizing (or augmenting) outside this callback.
        self._remove_batch_hook()

    # ------------------------------------------------------------------ generations

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.config.search:
            return
        epoch = trainer.current_epoch
        # Resumed from a checkpoint saved at this epoch's validation end, Lightning ends the
        # epoch again: on_train_start has already run its generations and recorded it.
        recorded = epoch <= self._epoch_done
        self._run_epoch_generations(trainer, pl_module, epoch)
        self._log_active(pl_module)
        if not recorded:
            self._record_timeline(trainer, epoch)

    def _record_timeline(self, trainer: pl.Trainer, epoch: int) -> None:
        """Append the policy the epochs after ``epoch`` train with to ``timeline.jsonl``."""
        if trainer.is_global_zero and self.run_dir is not None:
            hv = self.search.hypervolume_history if self.search is not None else []
            append_timeline(
                self.run_dir,
                {
                    "epoch": epoch,
                    "generation": self.generation,
                    "policy": self._active.to_dict(),
                    "objectives": self._active_objectives,
                    "hypervolume": hv[-1] if hv else None,
                },
            )

    def _run_epoch_generations(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int
    ) -> None:
        if self.schedule is None or self.search is None or epoch <= self._epoch_done:
            return
        for _ in range(self.schedule.generations_at.get(epoch, 0)):
            try:
                self._run_generation(trainer, pl_module, epoch)
            except EvoAugError:
                raise
            except Exception as err:  # never lose the training run to the search
                rank_zero_info(
                    f"evoaug: generation {self.generation} failed ({type(err).__name__}: {err}); "
                    "training goes on with the current policy"
                )
                break
        self._epoch_done = epoch

    def _draw_probes(self, trainer: pl.Trainer) -> tuple[Probe, Probe]:
        if self._probes is not None:
            return self._probes
        cfg = self.config
        g = torch.Generator().manual_seed(cfg.seed)
        train_loader = trainer.train_dataloader
        if train_loader is None:
            raise EvoAugError("the Trainer has no training dataloader")
        (images, labels, groups), layout = collect_samples(
            train_loader, n=cfg.train_probe_size, generator=g, batch_keys=cfg.batch_keys
        )
        val_loaders = trainer.val_dataloaders
        if val_loaders is None:
            val_loaders = _setup_val_dataloaders(trainer)
        if isinstance(val_loaders, Sequence):
            if cfg.val_dataloader_idx >= len(val_loaders):
                raise ConfigError(
                    f"`val_dataloader_idx` must be below the number of validation loaders "
                    f"({len(val_loaders)}), got {cfg.val_dataloader_idx}"
                )
            val_loader = val_loaders[cfg.val_dataloader_idx] if val_loaders else None
        else:
            val_loader = val_loaders
        if val_loader is not None:
            pool, _ = collect_samples(
                val_loader,
                n=4 * cfg.val_probe_size,
                generator=g,
                batch_keys=cfg.batch_keys,
                where="validation",
            )
        else:
            rank_zero_info("evoaug: no validation data; the validation probe comes from training")
            pool, _ = collect_samples(
                train_loader, n=4 * cfg.val_probe_size, generator=g, batch_keys=cfg.batch_keys
            )
        v_images, v_labels, v_groups = pool
        if cfg.fairness_groups == "sensitive" or (
            cfg.fairness_groups == "auto" and v_groups is not None
        ):
            if v_groups is None:
                raise ConfigError(_NO_GROUPS)
            self.groups_source = "sensitive attribute"
        else:
            v_groups = v_labels
            self.groups_source = "classes"
        rank_zero_info(f"evoaug: fairness groups are the {self.groups_source}")
        if trainer.is_global_zero and self.run_dir is not None:
            write_run_info(self.run_dir, {"groups_source": self.groups_source})
            write_samples(self.run_dir / "samples.pt", v_images, v_labels, v_groups)
        train_probe = Probe(images, labels, groups)
        val_probe = stratified_probe(
            v_images, v_labels, v_groups, size=cfg.val_probe_size, generator=g
        )
        self._layout = self._layout or layout
        self._probes = (train_probe, val_probe)
        return self._probes

    def _optimizer_spec(self, trainer: pl.Trainer) -> OptimizerSpec:
        if not trainer.optimizers:
            raise ConfigError("EvoAugCallback needs the LightningModule to configure an optimizer")
        return OptimizerSpec.from_optimizer(trainer.optimizers[0])

    def _run_generation(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int
    ) -> None:
        if self.search is None or self._evaluator is None:
            raise EvoAugError("EvoAugCallback.setup did not run before a generation")
        train_probe, val_probe = self._draw_probes(trainer)
        candidates = self.search.ask()
        mine = shard(len(candidates), trainer.global_rank, trainer.world_size)
        loss_fn = self.config.loss_fn or F.cross_entropy
        seed = self.config.seed * 1_000_003 + self.generation
        started = time.perf_counter()
        with _detached_trainer(pl_module):
            results = self._evaluator.evaluate(
                pl_module,
                loss_fn,
                self._optimizer_spec(trainer),
                train_probe,
                val_probe,
                [candidates[i].policy for i in mine],
                seed=seed,
            )
        local = [(i, (r, trainer.global_rank)) for i, r in zip(mine, results, strict=True)]
        merged: list[tuple[CandidateResult, int]] = merge_shards(
            len(candidates), all_gather_objects(local)
        )
        self.search.tell([r.objectives if r.ok else None for r, _ in merged])
        check_identical(self.search.checksum())
        self._front = self.search.pareto_front()
        chosen = self.selection.select(self._front) if self._front else None
        if chosen is not None:
            policy, objectives = self._front[chosen]
            self._active_objectives = dict(objectives)
            # Name it after where it came from, so reports and logs can refer to it.
            label = f"evoaug generation {self.generation} front member {chosen}"
            self._set_active(dataclasses.replace(policy, name=label))
        records = [
            history_record(
                generation=self.generation,
                epoch=trainer.current_epoch,
                rank=rank,
                candidate=c,
                objectives=r.objectives,
                failure=r.failure,
                seconds=r.seconds,
            )
            for c, (r, rank) in zip(candidates, merged, strict=True)
        ]
        if trainer.is_global_zero and self.run_dir is not None:
            HistoryWriter(self.run_dir).append(records)
            write_pareto(self.run_dir / "pareto.yaml", self._front)
            write_best_policy(
                self.run_dir / "best_policy.yaml", self._active, self._active_objectives
            )
        self._history_lines += len(records)
        self.generation += 1
        failed = sum(1 for r, _ in merged if not r.ok)
        rank_zero_info(
            f"evoaug: generation {self.generation} at epoch {epoch}: "
            f"{len(candidates)} candidates ({failed} failed) in "
            f"{time.perf_counter() - started:.1f}s; front of {len(self._front)}; "
            f"hypervolume {self.search.hypervolume_history[-1]:.4f}"
        )

    def _run_info(self, trainer: pl.Trainer) -> dict[str, Any]:
        cfg = self.config
        datamodule = getattr(trainer, "datamodule", None)
        describe = getattr(datamodule, "describe", None)
        module = trainer.lightning_module
        return {
            "evoaug": {
                "objectives": list(cfg.objectives),
                "selection": repr(self.selection),
                "population_size": cfg.population_size,
                "search_budget": cfg.search_budget,
                "lookahead_steps": cfg.lookahead_steps,
                "lookahead_batch_size": cfg.lookahead_batch_size,
                "lookahead_repeats": cfg.lookahead_repeats,
                "mode": cfg.mode,
                "fairness_groups": cfg.fairness_groups,
                "fairness_metric": cfg.fairness_metric,
                "n_subpolicies": cfg.n_subpolicies,
                "n_genes": cfg.n_genes,
                "interpolation": cfg.interpolation,
                "initial_policy": cfg.initial_policy.name or "custom",
                "seed": cfg.seed,
                "search": cfg.search,
                "every_n_epochs": cfg.every_n_epochs,
                "min_generations": cfg.min_generations,
                "warmup_epochs": cfg.warmup_epochs,
                "train_probe_size": cfg.train_probe_size,
                "val_probe_size": cfg.val_probe_size,
                # (write_run_info makes these plain: tuples lists, callables their repr)
                "initial_presets": cfg.initial_presets,
                "ops": cfg.ops,
                "normalize": cfg.normalize,
                "batch_keys": cfg.batch_keys,
                "val_dataloader_idx": cfg.val_dataloader_idx,
                "feature_layer": cfg.feature_layer,
                "loss_fn": cfg.loss_fn,
            },
            "schedule": {
                "generations_at": {str(k): v for k, v in self.schedule.generations_at.items()}
                if self.schedule
                else {},
                "description": self.schedule.describe() if self.schedule else "",
            },
            "dataset": describe() if callable(describe) else None,
            "model": type(module).__name__ if module is not None else None,
            "max_epochs": trainer.max_epochs,
            "world_size": trainer.world_size,
        }

    def _set_active(self, policy: Policy) -> None:
        self._active = policy
        self.augmenter.set_policy(policy)
        self.slot.set(policy)

    def _log_active(self, pl_module: pl.LightningModule) -> None:
        if self.search is None or not self.generation:
            return
        metrics = {f"evoaug/{k}": float(v) for k, v in self._active_objectives.items()}
        metrics["evoaug/generation"] = float(self.generation)
        metrics["evoaug/front_size"] = float(len(self._front))
        metrics["evoaug/hypervolume"] = float(self.search.hypervolume_history[-1])
        metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=False)

    # ------------------------------------------------------------------ checkpoints

    @override
    def state_dict(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "generation": self.generation,
            "active_policy": self._active.to_dict(),
            "active_objectives": dict(self._active_objectives),
            "search": self.search.state_dict() if self.search is not None else None,
            "augmenter": self.augmenter.state_dict(),
            "history_lines": self._history_lines,
            "epoch_done": self._epoch_done,
            "trained_epoch": self._last_trained_epoch(),
            "config_seed": self.config.seed,
            "datasets": [d.state_dict() for d in self._wrapped_datasets()],
        }

    def _wrapped_datasets(self) -> list[AugmentedDataset]:
        """The datasets :meth:`wrap_dataset` made that are still alive, in order."""
        return [d for d in (ref() for ref in self._datasets) if d is not None]

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied in on_fit_start, after setup built the search.
        self._pending_state = dict(state_dict)

    def _last_trained_epoch(self) -> int:
        """The last epoch whose training batches all ran (checkpoints can come mid-epoch)."""
        trainer = self._trainer
        if trainer is None:
            return self._epoch_done
        progress: Any = trainer.fit_loop.epoch_progress.current  # a _ProcessedTracker
        trained = int(progress.processed) - 1
        in_epoch = int(progress.started) > int(progress.processed)  # saved at validation end
        if in_epoch and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            trained += 1
        return trained

    def _apply_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ConfigError(
                f"checkpoint has evoaug callback state version {state.get('version')!r}; "
                f"this evoaug reads version {_STATE_VERSION}"
            )
        self.generation = int(state["generation"])
        self._active = Policy.from_dict(state["active_policy"])
        self._active_objectives = dict(state["active_objectives"])
        if state["search"] is not None and self.search is not None:
            self.search.load_state_dict(state["search"])
            self._front = self.search.pareto_front() if self.generation else []
        self.augmenter.load_state_dict(state["augmenter"])
        # Dataset mode: the main process's streams (checkpoints before this key have none).
        for dataset, saved in zip(
            self._wrapped_datasets(), state.get("datasets", []), strict=False
        ):
            dataset.load_state_dict(saved)
        self._history_lines = int(state["history_lines"])
        self._epoch_done = int(state["epoch_done"])
        self._trained_epoch = int(state["trained_epoch"])
        if self.run_dir is not None and self._trainer is not None and self._trainer.is_global_zero:
            # Lines the killed run wrote after this checkpoint would otherwise appear twice.
            HistoryWriter(self.run_dir).truncate(self._history_lines)
            truncate_timeline(self.run_dir, last_epoch=self._epoch_done)


_NO_GROUPS = (
    "`fairness_groups='sensitive'` needs batches that carry group ids: yield (images, labels, "
    "groups) tuples or dicts with a 'group' key (or name yours with `batch_keys={'group': ...}`); "
    "or use fairness_groups='class' to measure worst-class accuracy instead"
)


def _fit(policy: Policy, space: GenomeSpace) -> Policy | None:
    """``policy`` cut to the space's first K sub-policies and L genes; None if its ops don't fit."""
    subs = tuple(SubPolicy(sub.genes[: space.n_genes]) for sub in policy.sub_policies)
    fitted = Policy(subs[: space.n_subpolicies], name=policy.name)
    return fitted if set(fitted.ops) <= set(space.ops) else None


@contextmanager
def _detached_trainer(module: pl.LightningModule) -> Iterator[None]:
    """Let the evaluator deep-copy a LightningModule without copying its Trainer."""
    trainer = module._trainer
    module._trainer = None
    try:
        yield
    finally:
        module._trainer = trainer


def _setup_val_dataloaders(trainer: pl.Trainer) -> Any:
    """The validation loaders of a fit whose validation has not run yet, else ``None``.

    Lightning builds them when it first validates: with ``num_sanity_val_steps=0`` and a
    first generation before the first validation epoch (``check_val_every_n_epoch > 1``), they
    do not exist yet. Building them now is what that first validation would do.
    """
    loop = getattr(
        getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None), "val_loop", None
    )
    setup = getattr(loop, "setup_data", None)
    if not callable(setup):
        return None
    try:
        setup()
    except Exception:  # no validation configured (limit_val_batches=0, no val_dataloader)
        return None
    return trainer.val_dataloaders


# What a run writes into its run directory and the report reads back: a new (not resumed) fit
# into the same directory replaces them, so that its report describes it alone.
# (The test predictions are evoaug.models.Classifier's, named here to keep imports one-way.)
_RUN_FILES = (
    HISTORY_FILE, TIMELINE_FILE, RUN_FILE, "pareto.yaml", "best_policy.yaml", "samples.pt",
    "test_predictions.csv", "test_meta.json",
)  # fmt: skip


def _clear_earlier_run(run_dir: Path) -> None:
    """Remove an earlier run's files from ``run_dir``, saying so (a new fit, not a resume)."""
    stale = [run_dir / name for name in _RUN_FILES if (run_dir / name).is_file()]
    if not stale:
        return
    rank_zero_info(
        f"evoaug: {run_dir} held an earlier run's files ({', '.join(p.name for p in stale)}); "
        "this new run replaces them. To continue that run, resume it with `ckpt_path`; to keep "
        "both, give each run its own directory (a logger's version, or `default_root_dir`)."
    )
    for path in stale:
        path.unlink()
