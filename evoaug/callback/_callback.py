"""EvoAugCallback: online policy search inside a Lightning Trainer.

The callback is the glue: its Lightning hooks call the modules beside it, each with one job
(``docs/contributing.md`` lists them), and it owns the state checkpoints carry.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from typing_extensions import override

from evoaug._run_layout import RUN_SUBDIR
from evoaug.callback import _lightning
from evoaug.callback._batch_hook import BatchHook
from evoaug.callback._generation import OnlineSearch, optimizer_of
from evoaug.callback._meter import SearchMeter
from evoaug.callback._pace import Pace
from evoaug.callback._probes import ProbeSet, check_groups, probes_for_fit
from evoaug.callback._rest import SearchRest
from evoaug.callback._rundir import RunDirectory, run_info
from evoaug.callback._schedule import Schedule, plan_for_trainer
from evoaug.callback._settings import (
    DEFAULT_INITIAL_PRESETS,
    DEFAULT_OBJECTIVES,
    CallbackConfig,
    resolve_normalize,
)
from evoaug.callback._state import CallbackState
from evoaug.exceptions import ConfigError, EvoAugError
from evoaug.genome import GenomeSpace
from evoaug.pipeline import AugmentedDataset, BatchAugmenter, PolicySlot
from evoaug.policy import Policy
from evoaug.search import Search, Selection

__all__ = ["EvoAugCallback"]

_LEGACY_STATE_KEY = "EvoAugCallback"  # checkpoints saved before state keys named the settings


class EvoAugCallback(_lightning.CallbackBase):
    """Search augmentation policies with NSGA-II while the model trains; train with the best.

    At the end of scheduled epochs the callback runs a generation: every candidate policy is
    scored on the live model (look-ahead on an isolated copy, see :class:`evoaug.evaluate.
    Evaluator`), NSGA-II proposes the next candidates, and the selection rule picks the policy the
    next epochs train with. Generations are planned from ``search_budget``, the fraction of the
    fit's time the search may spend: estimated before the fit (and logged), then measured in
    seconds from the first epoch on (:class:`evoaug.callback.SearchMeter`).

    The same class works in a ``pytorch_lightning`` Trainer and in a ``lightning.pytorch``
    Trainer or LightningCLI (it subclasses both ``Callback`` classes when ``lightning`` is
    installed). One EvoAugCallback per Trainer.

    Args:
        objectives: Objectives to optimize, all "higher is better".
        population_size: Candidates per generation (P).
        search_budget: Fraction of the fit's wall-clock time the search may spend: the
            generations' seconds over the seconds of the training epochs (validation
            included) projected to ``max_epochs``. Measured time varies between runs, so the
            number of generations may too.
        every_n_epochs: One generation every n epochs instead of the budget (the same
            generations on every run).
        min_generations: At least this many generations, whatever the budget (default 0:
            the budget decides, and the log says what budget would pay for one).
        patience: Budgeted generations in a row that change nothing (``decision="evidence"``:
            every challenger refused) before the search rests: the next generation waits 2
            epochs, and each further one that changes nothing doubles the wait (4, 8, ...),
            one generation per epoch end, until one changes the policy. The budget is then an
            upper bound: a search that finds nothing costs less than it. ``None``: spend the
            budget whatever the outcomes. A fixed schedule (``every_n_epochs``) and
            ``decision="front"`` (no refusals) never rest, and ``min_generations`` run
            whatever it says.
        warmup_epochs: Epochs trained with ``initial_policy`` before the first generation.
        lookahead_steps: k, optimizer steps of the guard's look-aheads (and of each
            candidate's with ``estimator="lookahead"``). 60 by default: shorter look-aheads
            see the first cost of an augmentation and miss its gain (on CIFAR-10 a flip that
            lifts a left-behind group by 18 points after training scored -0.03 after 20 steps
            and +0.05 after 60; ``docs/benchmarks.md``).
        lookahead_batch_size: Look-ahead minibatch size.
        lookahead_repeats: Score each candidate this many times with different seeds and
            average (:class:`~evoaug.evaluate.Evaluator`'s ``repeats``): less noise, more cost;
            the schedule prices a generation at ``repeats`` times P·k steps.
        train_probe_size: Training images drawn for look-ahead and difficulty/diversity.
        val_probe_size: Validation images (stratified by group) for accuracy and fairness.
        selection: Which front member is the search's challenger (``decision="evidence"``)
            or trains next (``decision="front"``): ``"weights"`` (default), ``"knee"``,
            ``"constraint"`` or a :class:`evoaug.search.Selection`.
        mode: ``"batch"``: augment each batch on its device in the training loop;
            ``"dataset"``: augment per sample in DataLoader workers (wrap your training dataset
            with :meth:`wrap_dataset`).
        fairness_groups: ``"auto"`` uses the batches' groups when they carry some, else the
            classes; ``"sensitive"`` requires groups; ``"class"`` always uses the classes.
        fairness_metric: See :class:`evoaug.objectives.Fairness` (default: the worst-group
            gain over the look-ahead, which ranks outcomes best; ``docs/benchmarks.md``).
        estimator: How the search scores accuracy and fairness: ``"alignment"`` (default; the
            gain in gradient alignment with the validation gradient, forward passes only) or
            ``"lookahead"`` (after a k-step look-ahead per candidate; see
            :class:`evoaug.evaluate.Evaluator`).
        decision: ``"evidence"`` (default): the policy that trains changes only when a
            challenger has paired evidence of doing better than it and than no augmentation
            (:class:`evoaug.search.EvidenceRule`); ``"front"``: the ``selection`` rule's pick
            of the front trains after every generation.
        confidence: One-sided confidence of the evidence rule's lower bounds. The guards of
            challengers with only the look-ahead's evidence share its error rate among the
            fit's planned generations (``1 - (1 - confidence) / planned``).
        guard_margin: The guard passes a challenger whose look-ahead decision score beats the
            incumbent's and no augmentation's when its lower bound is above ``-guard_margin``
            for no augmentation and the coverage challenger (which have evidence from outside
            the look-ahead), and above zero for every other challenger (0: above zero for
            all).
        guard_repeats: Look-aheads per policy in the guard (paired repeats, own seeds).
        credit: Score every op alone and offer the ops that help as a challenger
            (:func:`evoaug.search.credit_policy`).
        regularizer: The policy added to the incumbent once the model fits its training
            images and not its validation images (a Policy, preset or file; ``None``: never).
            A model that classifies its clean training images correctly learns little more
            from them, and a short look-ahead cannot see a regularizer's gain over the epochs
            left: it is adopted on that evidence, then dropped if the live validation probe
            is worse once the model fits its clean training probe again (``docs/concepts.md``,
            *The decision*). The fit is checked at every generation and, once a generation
            has run, at every epoch end (a forward pass over the training probe, stopped at
            the first chunk of images that shows the model does not fit it). A preset
            that takes an image size (TrivialAugment's) gets the probes'.
        regularize_at: Clean probe accuracy from which the model counts as fitting the
            probe's images: the regularizer is offered when the training probe's is at least
            this and the validation probe's at least ``regularize_gap`` below it.
        regularize_gap: How far below the training probe's accuracy the validation probe's
            must be for the regularizer to be offered. A smaller gap leaves a regularizer
            little to win and the dip that follows its adoption to lose.
        batch_keys: Where images, labels and groups sit in a batch, e.g.
            ``{"image": "x", "label": "y", "group": "race"}`` or positions for tuples.
        normalize: Applied after augmentation to every batch (train, val, test): ``(mean, std)``,
            a callable, or ``"datamodule"`` for the attached datamodule's ``normalization``
            attribute (evoaug's datamodules have one). Remove normalization from your dataset
            transforms when you set it.
        loss_fn: Loss of the look-ahead; default: cross-entropy on the module's outputs.
        search: ``False`` trains with ``initial_policy`` throughout, without any generation:
            the same pipeline as the search, for fixed-policy baselines.
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
        objectives: Sequence[str] = DEFAULT_OBJECTIVES,
        population_size: int = 8,
        search_budget: float = 0.3,
        every_n_epochs: int | None = None,
        min_generations: int = 0,
        patience: int | None = 3,
        warmup_epochs: int = 1,
        lookahead_steps: int = 60,
        lookahead_batch_size: int = 32,
        lookahead_repeats: int = 1,
        train_probe_size: int = 512,
        val_probe_size: int = 256,
        selection: str | Selection = "weights",
        mode: str = "batch",
        fairness_groups: str = "auto",
        fairness_metric: str = "worst_group_gain",
        estimator: str = "alignment",
        decision: str = "evidence",
        confidence: float = 0.9,
        guard_margin: float = 0.02,
        guard_repeats: int = 1,
        credit: bool = True,
        regularizer: Policy | str | None = "trivialaugment",
        regularize_at: float = 0.99,
        regularize_gap: float = 0.05,
        batch_keys: Mapping[str, int | str] | None = None,
        normalize: Any = None,
        loss_fn: Callable[..., torch.Tensor] | None = None,
        search: bool = True,
        initial_policy: Policy | str = "identity",
        initial_presets: Sequence[str] = DEFAULT_INITIAL_PRESETS,
        n_subpolicies: int = 5,
        n_genes: int = 2,
        ops: Sequence[str] | None = None,
        interpolation: str | None = None,
        val_dataloader_idx: int = 0,
        feature_layer: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.config = CallbackConfig.from_arguments(arguments)
        cfg = self.config
        self.space = GenomeSpace(
            cfg.ops,
            n_subpolicies=cfg.n_subpolicies,
            n_genes=cfg.n_genes,
            interpolation=cfg.initial_policy.interpolation,
        )
        self.slot = PolicySlot(cfg.initial_policy, max_genes=max(4, cfg.n_genes))
        self.augmenter = BatchAugmenter(cfg.initial_policy, seed=cfg.seed)
        self._hook = BatchHook(
            self.augmenter if cfg.mode == "batch" else None, batch_keys=cfg.batch_keys
        )
        self.pace = Pace(cfg, log=lambda message: self._info(message))
        self.groups_source: str | None = None
        self._online: OnlineSearch | None = None
        self._run: RunDirectory | None = None
        self._probes: ProbeSet | None = None
        self._active = cfg.initial_policy
        self._active_objectives: dict[str, float] = {}
        self._history_lines = 0
        self._epoch_done = -1  # last epoch whose scheduled generations ran
        self._trained_epoch = -1  # last epoch fully trained, as of the restored checkpoint
        self._trainer: Any = None
        self._info: Callable[[str], Any] = _lightning.rank_zero_info(None)
        self._pending_state: dict[str, Any] | None = None
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
        return list(self._online.front) if self._online is not None else []

    @property
    def search(self) -> Search | None:
        """The NSGA-II search of the current fit (``None`` before ``setup``)."""
        return self._online.search if self._online is not None else None

    @property
    def generation(self) -> int:
        """Generations run so far."""
        return self._online.generation if self._online is not None else 0

    @property
    def schedule(self) -> Schedule | None:
        """The search's plan, made when training starts (``None`` before)."""
        return self.pace.schedule

    @property
    def meter(self) -> SearchMeter:
        """The measured cost of the fit's epochs and generations against the budget."""
        return self.pace.meter

    @property
    def rest(self) -> SearchRest:
        """Generations in a row that changed nothing, and the rest they started."""
        return self.pace.rest

    @property
    def selection(self) -> Selection:
        """The rule that picks the policy to train with from the front."""
        return self.config.selection

    @property
    def run_dir(self) -> Path | None:
        """The run directory, ``<trainer log dir>/evoaug`` (``None`` before a fit's setup)."""
        return self._run.path if self._run is not None else None

    @property
    @override
    def state_key(self) -> str:
        cfg = self.config
        return self._generate_state_key(
            objectives=list(cfg.objectives),
            population_size=cfg.population_size,
            n_subpolicies=cfg.n_subpolicies,
            n_genes=cfg.n_genes,
            ops=None if cfg.ops is None else list(cfg.ops),
            seed=cfg.seed,
        )

    def wrap_dataset(self, dataset: Any, **kwargs: Any) -> AugmentedDataset:
        """Wrap a map-style training dataset for ``mode="dataset"`` (reads this callback's slot)."""
        wrapped = AugmentedDataset(dataset, self.slot, seed=self.config.seed, **kwargs)
        self._datasets.append(weakref.ref(wrapped))  # their streams go into checkpoints
        return wrapped

    # ------------------------------------------------------------------ setup

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._info = _lightning.rank_zero_info(trainer)
        callbacks = getattr(trainer, "callbacks", [])
        others = [c for c in callbacks if isinstance(c, EvoAugCallback) and c is not self]
        if others:
            raise ConfigError(
                "a Trainer takes one EvoAugCallback, got "
                f"{len(others) + 1}: each would augment and normalize every batch again. Put "
                "every objective and setting into one callback"
            )
        normalize = resolve_normalize(self.config.normalize, trainer)
        self.augmenter.normalize = normalize
        self._hook.normalize = normalize
        # Ranks augment different samples: give each its own stream.
        self.augmenter.seed = self.config.seed * 1_000_003 + trainer.global_rank
        # Every stage: validation, test and predict batches need `normalize` too.
        self._hook.install(trainer, pl_module)
        if stage != "fit":
            return
        self._trainer = trainer
        root = trainer.log_dir or trainer.default_root_dir
        self._run = RunDirectory(
            Path(root) / RUN_SUBDIR, writer=trainer.is_global_zero, log=self._info
        )
        self._online = OnlineSearch(self.config, self.space, normalize=normalize)
        missing = _lightning.missing_internals(trainer)
        if missing:
            self._info(
                f"evoaug: this Lightning release lacks {missing} (checked against Lightning "
                f"{_lightning.TESTED_LIGHTNING}): the validation probe may come from training "
                "data before the first validation, and a resumed run may repeat a generation"
            )

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        resumed = self._pending_state is not None
        if self._fitted and not resumed:
            raise ConfigError(
                "this EvoAugCallback has already run a fit: a second fit would build a new "
                "search under the old one's counters. Use a new callback for a new run, or "
                "resume the first one from a checkpoint (`trainer.fit(..., ckpt_path=...)`)"
            )
        if self._run is not None:
            self._run.start(resumed=resumed)
        if self._pending_state is not None:
            self._apply_state(self._pending_state)
            self._pending_state = None
        self._fitted = True
        self._set_active(self._active)

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_training_data(trainer)
        online = self._online
        self.pace.schedule = plan_for_trainer(
            trainer,
            self.config,
            candidate_steps=online.candidate_steps() if online else self.config.lookahead_steps,
            scoring_images=online.scoring_images() if online else 0,
            decision_images=online.decision_images() if online else 0.0,
        )
        self._info(self.pace.schedule.describe())
        if self._run is not None:
            self._run.write_info(run_info(trainer, self.config, self.pace.schedule))
        # A checkpoint saved at validation end precedes that epoch's generations: run them now,
        # on the same weights they would have seen, and record the epoch in the timeline.
        if self.config.search:
            for epoch in range(self._epoch_done + 1, self._trained_epoch + 1):
                self._search_at_epoch_end(trainer, pl_module, epoch)
                self._record_timeline(epoch)

    def _check_training_data(self, trainer: Any) -> None:
        """What needs the training loader: dataset mode's wrapper, and sensitive groups."""
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if self.config.mode == "dataset" and not (
            isinstance(dataset, AugmentedDataset) and dataset.slot is self.slot
        ):
            raise ConfigError(
                "`mode='dataset'` needs the training dataset wrapped by this callback: "
                "`train_set = callback.wrap_dataset(train_set)` before building the "
                f"DataLoader; got {type(dataset).__name__}. Or use mode='batch'."
            )
        if "fairness" in self.config.objectives and self.config.fairness_groups == "sensitive":
            check_groups(trainer.train_dataloader, self.config.batch_keys)

    # ------------------------------------------------------------------ teardown

    @override
    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._hook.remove()

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Lightning skips teardown when a stage fails or is interrupted: unwrap the hook here,
        # so that the model does not go on normalizing (or augmenting) outside this callback.
        self._hook.remove()

    # ------------------------------------------------------------------ generations

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        summary = self.pace.summary() if self.config.search else None
        if summary is not None:
            self._info(summary)

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.meter.start_epoch()

    @override
    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.meter.start_batch()

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.meter.batch_done()

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.meter.end_epoch()
        if not self.config.search:
            return
        epoch = trainer.current_epoch
        # Resumed from a checkpoint saved at this epoch's validation end, Lightning ends the
        # epoch again: on_train_start has already run its generations and recorded it.
        recorded = epoch <= self._epoch_done
        self._search_at_epoch_end(trainer, pl_module, epoch)
        self._log_active(pl_module)
        if not recorded:
            self._record_timeline(epoch)

    def _search_at_epoch_end(self, trainer: Any, pl_module: Any, epoch: int) -> None:
        """The generations the budget pays for at ``epoch``'s end; if none runs, the fit check."""
        if self.schedule is None or self._online is None or epoch <= self._epoch_done:
            return
        first = self.generation
        while self._generations_due(trainer, epoch, first, ran=self.generation - first) > 0:
            start = time.perf_counter()
            before = self.generation
            generation = functools.partial(self._run_generation, trainer, pl_module, epoch)
            if not self._survived(f"generation {self.generation}", generation):
                break
            self.meter.add_generation(time.perf_counter() - start)
            if self.generation == before:  # nothing ran: never loop on it
                break
        if self.generation == first and self._online.generation:
            check = functools.partial(self._check_fit, trainer, pl_module, epoch)
            self._survived(f"the fit check at epoch {epoch}", check)
        self._epoch_done = epoch

    def _survived(self, what: str, step: Callable[[], None]) -> bool:
        """Run a search step; any failure but evoaug's own is logged and training goes on."""
        try:
            step()
        except EvoAugError:
            raise
        except Exception as err:  # never lose the training run to the search
            self._info(
                f"evoaug: {what} failed ({type(err).__name__}: {err}); training goes on with "
                "the current policy"
            )
            return False
        return True

    def _generations_due(self, trainer: Any, epoch: int, first: int, ran: int) -> int:
        """More generations the budget pays for now (:meth:`Pace.due`); rank 0 decides for all."""
        count = self.pace.due(epoch=epoch, first=first, ran=ran, max_epochs=_max_epochs(trainer))
        if trainer.world_size > 1:
            return int(trainer.strategy.broadcast(count, src=0))
        return count

    def _run_generation(self, trainer: Any, pl_module: Any, epoch: int) -> None:
        if self._online is None or self._run is None:
            raise EvoAugError("EvoAugCallback.setup did not run before a generation")
        probes = self._draw_probes(trainer)
        outcome = self._online.run(
            pl_module,
            optimizer_of(trainer),
            probes,
            incumbent=self._active,
            epoch=trainer.current_epoch,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            planned=max(1, self.schedule.total_generations if self.schedule else 1),
            max_epochs=_max_epochs(trainer),
        )
        if outcome.chosen is not None:
            self._active_objectives = outcome.objectives
            self._set_active(outcome.chosen)
        self._run.record_generation(
            outcome.records, self._online.front, self._active, self._active_objectives
        )
        if outcome.decision is not None:
            self._run.record_decision(
                {
                    "generation": outcome.index,
                    "epoch": trainer.current_epoch,
                    **outcome.decision.to_dict(),
                    "credit": outcome.credit,
                }
            )
            self._info(f"evoaug: decision at epoch {epoch}: {outcome.decision.reason}")
        self._history_lines += len(outcome.records)
        hypervolume = self._online.hypervolume
        self._info(
            f"evoaug: generation {outcome.index + 1} at epoch {epoch}: {len(outcome.records)} "
            f"candidates ({outcome.failed} failed) in {outcome.seconds:.1f}s; front of "
            f"{len(self._online.front)}; hypervolume {hypervolume or 0.0:.4f}"
        )
        if outcome.decision is not None:  # after the lines it follows from
            self.pace.record(epoch, changed=outcome.decision.changed)

    def _check_fit(self, trainer: Any, pl_module: Any, epoch: int) -> None:
        """At an epoch end without a generation: the regularizer's adoption or trial verdict."""
        if self._online is None or self._run is None:
            return
        decision = self._online.check_fit(
            pl_module,
            self._draw_probes(trainer),
            self._active,
            epoch=epoch,
            max_epochs=_max_epochs(trainer),
        )
        if decision is None:
            return
        if decision.changed:
            self._set_active(decision.chosen)
            self._active_objectives = {}
            self.pace.record(epoch, changed=True)
        self._run.record_decision({"epoch": epoch, **decision.to_dict(), "credit": {}})
        self._info(f"evoaug: decision at epoch {epoch}: {decision.reason}")

    def _draw_probes(self, trainer: Any) -> ProbeSet:
        if self._probes is not None:
            return self._probes
        probes = probes_for_fit(trainer, self.config, log=self._info)
        self.groups_source = probes.groups_source
        self._info(f"evoaug: fairness groups are the {probes.groups_source}")
        if self._run is not None:
            self._run.write_info({"groups_source": probes.groups_source})
            self._run.write_samples(*probes.pool)
        self._hook.layout = self._hook.layout or probes.layout
        self._probes = probes
        return probes

    def _set_active(self, policy: Policy) -> None:
        self._active = policy
        self.augmenter.set_policy(policy)
        self.slot.set(policy)

    def _record_timeline(self, epoch: int) -> None:
        """Append the policy the epochs after ``epoch`` train with to ``timeline.jsonl``."""
        if self._run is not None:
            self._run.record_epoch(
                {
                    "epoch": epoch,
                    "generation": self.generation,
                    "policy": self._active.to_dict(),
                    "objectives": self._active_objectives,
                    "hypervolume": self._online.hypervolume if self._online else None,
                }
            )

    def _log_active(self, pl_module: Any) -> None:
        if self._online is None or not self.generation:
            return
        metrics = {f"evoaug/{k}": float(v) for k, v in self._active_objectives.items()}
        metrics["evoaug/generation"] = float(self.generation)
        metrics["evoaug/front_size"] = float(len(self._online.front))
        metrics["evoaug/hypervolume"] = float(self._online.hypervolume or 0.0)
        metrics = {k: v for k, v in metrics.items() if np.isfinite(v)}
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=False)

    # ------------------------------------------------------------------ checkpoints

    @override
    def state_dict(self) -> dict[str, Any]:
        trained = self._epoch_done
        if self._trainer is not None:
            trained = _lightning.trained_epochs(self._trainer, fallback=self._epoch_done)
        return CallbackState(
            generation=self.generation,
            search=self.search.state_dict() if self.search is not None else None,
            active_policy=self._active.to_dict(),
            active_objectives=dict(self._active_objectives),
            augmenter=self.augmenter.state_dict(),
            history_lines=self._history_lines,
            epoch_done=self._epoch_done,
            trained_epoch=trained,
            config_seed=self.config.seed,
            datasets=[d.state_dict() for d in self._wrapped_datasets()],
            resting=self._online.resting() if self._online is not None else {},
            trial=self._online.trial() if self._online is not None else {},
            meter=self.meter.state_dict(),
            rest=self.rest.state_dict(),
        ).to_dict()

    def _wrapped_datasets(self) -> list[AugmentedDataset]:
        """The datasets :meth:`wrap_dataset` made that are still alive, in order."""
        return [d for d in (ref() for ref in self._datasets) if d is not None]

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Applied in on_fit_start, after setup built the search.
        self._pending_state = dict(state_dict)

    @override
    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("callbacks") or {}
        if self.state_key not in states and _LEGACY_STATE_KEY in states:
            self.load_state_dict(states[_LEGACY_STATE_KEY])

    def _apply_state(self, saved: dict[str, Any]) -> None:
        state = CallbackState.from_dict(saved)
        if self._online is not None:
            self._online.load_state_dict(state.generation, state.search, state.resting, state.trial)
        self._active = Policy.from_dict(state.active_policy)
        self._active_objectives = dict(state.active_objectives)
        self.augmenter.load_state_dict(state.augmenter)
        # Dataset mode: the main process's streams (checkpoints before this key have none).
        for dataset, stream in zip(self._wrapped_datasets(), state.datasets, strict=False):
            dataset.load_state_dict(stream)
        if state.meter:
            self.meter.load_state_dict(state.meter)
        if state.rest:
            self.rest.load_state_dict(state.rest)
        self._history_lines = state.history_lines
        self._epoch_done = state.epoch_done
        self._trained_epoch = state.trained_epoch
        if self._run is not None:
            # Lines the killed run wrote after this checkpoint would otherwise appear twice.
            self._run.rewind(
                history_records=self._history_lines,
                last_epoch=self._epoch_done,
                generations=state.generation,
            )


def _max_epochs(trainer: Any) -> int:
    """The fit's epochs, 0 when unbounded."""
    return int(trainer.max_epochs) if trainer.max_epochs not in (None, -1) else 0
