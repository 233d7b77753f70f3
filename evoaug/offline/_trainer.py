"""The lower level from a recipe: train a fresh model with one policy, score it on held-out data.

A recipe is an ordinary LightningCLI config (``model``, ``data``, ``trainer``, and an
:class:`~evoaug.EvoAugCallback` in ``trainer.callbacks``). For each candidate the recipe is
instantiated again through evoaug's LightningCLI (so everything ``evoaug fit`` accepts works
here), with these changes:

- ``seed_everything`` is the search's seed: every candidate starts from the same initial weights
  and sees the same batches (common random numbers);
- the trainer trains ``budget_epochs`` epochs on one device, without logger, checkpoints,
  progress bar or other callbacks, in a temporary directory;
- the recipe's ``EvoAugCallback`` runs with ``search=False`` and the candidate as
  ``initial_policy``: the same batch augmentation and normalization path as ``evoaug fit``.

The callback's settings also define the search: objectives, ops, K and L, the presets of the
first population, the selection rule, the probe sizes and the fairness groups. After training,
the same objectives as the online search are measured by :class:`~evoaug.evaluate.Evaluator`
with ``lookahead_steps=0`` on the trained model itself: accuracy and fairness on a validation
probe (stratified by group, from the datamodule's validation split, never seen in training),
difficulty and diversity on a training probe.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import random
import signal
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from evoaug._lightning_cli import EvoAugCLI, cli_arguments
from evoaug._run_layout import SAMPLES_FILE
from evoaug.callback import (
    EvoAugCallback,
    ProbeSet,
    detached_trainer,
    draw_probes,
    pick_loader,
    write_samples,
)
from evoaug.evaluate import Evaluator, OptimizerSpec
from evoaug.exceptions import ConfigError, EvoAugError, find_evoaug_error
from evoaug.genome import GenomeSpace
from evoaug.policy import Policy
from evoaug.search import Selection

__all__ = ["CALLBACK_PATHS", "RecipeTrainer", "load_recipe"]

CALLBACK_PATHS = (
    "evoaug.EvoAugCallback",
    "evoaug.lightning.EvoAugCallback",
    "evoaug.callback.EvoAugCallback",
    "evoaug.callback._callback.EvoAugCallback",
)
_TRAINER_OVERRIDES: dict[str, Any] = {
    "logger": False,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
}
_QUIET = ("pytorch_lightning", "lightning.pytorch", "lightning.fabric", "lightning_fabric")


def load_recipe(recipe: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A recipe as a plain dict (``yaml.safe_load`` of a file, or a copy of a mapping).

    Raises:
        ConfigError: A missing file, invalid YAML, or no ``model``/``data`` section.

    """
    if isinstance(recipe, Mapping):
        config = copy.deepcopy(dict(recipe))
        where = "the recipe"
    else:
        path = Path(recipe)
        if not path.is_file():
            raise ConfigError(f"`--config` must be a recipe file, got {str(path)!r} (not found)")
        try:
            config = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        where = str(path)
    if not isinstance(config, dict):
        raise ConfigError(f"{where} must hold a mapping, got {type(config).__name__}")
    missing = [key for key in ("model", "data") if key not in config]
    if missing:
        raise ConfigError(f"{where} must have `model` and `data` sections; missing {missing}")
    return config


def _callback_entry(config: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe's EvoAugCallback ``init_args`` (``{}`` when it configures none)."""
    callbacks = (config.get("trainer") or {}).get("callbacks") or []
    if isinstance(callbacks, Mapping):
        callbacks = [callbacks]
    for entry in callbacks:
        if isinstance(entry, Mapping) and entry.get("class_path") in CALLBACK_PATHS:
            return dict(entry.get("init_args") or {})
    return {"normalize": "datamodule"}


@contextlib.contextmanager
def _isolated_globals() -> Iterator[None]:
    """Training touches global RNGs and torch flags; give them back as they were."""
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (restored)
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    env = {k: os.environ.get(k) for k in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002 (the caller's state, given back)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _QUIET]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _instantiate(config: dict[str, Any]) -> Any:
    """The recipe's trainer, model and datamodule, through evoaug's LightningCLI (not run)."""
    try:
        with cli_arguments():
            return EvoAugCLI(
                subclass_mode_model=True,
                subclass_mode_data=True,
                args=config,
                run=False,
                save_config_callback=None,
                parser_kwargs={"prog": "evoaug search"},
            )
    except SystemExit as err:  # jsonargparse printed why
        raise ConfigError(
            "the recipe is not a valid LightningCLI config (see the message above); check it "
            "with `evoaug fit --config RECIPE --print_config`"
        ) from err
    except Exception as err:  # jsonargparse wraps the errors of the classes it instantiates
        cause = find_evoaug_error(err)
        if cause is None:
            raise
        raise cause from err


class RecipeTrainer:
    """Lower level of the offline search: train a fresh model from a recipe with one policy.

    See the module documentation for what changes in the recipe per candidate. Instances hold
    plain values only and are pickled to workers.

    Args:
        recipe: A recipe file (LightningCLI YAML) or the same as a mapping.
        budget_epochs: Epochs each candidate trains (E).
        seed: Seed of every candidate's training (``seed_everything``) and probes; ``None``
            takes the callback's ``seed`` from the recipe.

    Attributes:
        objectives: The recipe callback's objectives.
        space: The genome space (the callback's ``ops``, ``n_subpolicies``, ``n_genes``).
        selection: The callback's selection rule, for ``best_policy.yaml``.
        initial_policies: The callback's ``initial_presets`` that fit the space.
        population_size: The callback's ``population_size``.

    Raises:
        ConfigError: A bad argument, an unreadable recipe, or bad callback settings.

    Example:
        >>> recipe = {
        ...     "model": {"class_path": "evoaug.models.Classifier"},
        ...     "data": {"class_path": "evoaug.data.DigitsDataModule"},
        ...     "trainer": {"callbacks": [{"class_path": "evoaug.EvoAugCallback",
        ...                                "init_args": {"objectives": ["accuracy", "fairness"],
        ...                                              "population_size": 8}}]}}
        >>> lower = RecipeTrainer(recipe, budget_epochs=1)
        >>> lower.objectives, lower.space.n_subpolicies, lower.population_size
        (('accuracy', 'fairness'), 5, 8)

    """

    def __init__(
        self, recipe: str | Path | Mapping[str, Any], *, budget_epochs: int, seed: int | None = None
    ) -> None:
        epochs_ok = isinstance(budget_epochs, int) and not isinstance(budget_epochs, bool)
        if not epochs_ok or budget_epochs < 1:
            raise ConfigError(f"`budget_epochs` must be an int >= 1, got {budget_epochs!r}")
        self.config = load_recipe(recipe)
        self.recipe = None if isinstance(recipe, Mapping) else str(recipe)
        self.budget_epochs = budget_epochs
        args = _callback_entry(self.config)
        try:
            callback = EvoAugCallback(**args)
        except TypeError as err:
            raise ConfigError(
                f"the recipe's EvoAugCallback `init_args` are invalid: {err}"
            ) from err
        cfg = callback.config
        self.objectives: tuple[str, ...] = tuple(cfg.objectives)
        self.space: GenomeSpace = callback.space
        self.selection: Selection = callback.selection
        self.initial_policies = tuple(self.space.fit_presets(cfg.initial_presets))
        self.population_size = int(cfg.population_size)
        self.seed = int(cfg.seed if seed is None else seed)

    def candidate_config(
        self, root: str | Path, *, seed: int, policy_file: str | Path | None = None
    ) -> dict[str, Any]:
        """The recipe as one candidate trains it (see the module documentation)."""
        config = copy.deepcopy(self.config)
        config.pop("test_after_fit", None)
        config.pop("report", None)
        config["seed_everything"] = int(seed)
        trainer = dict(config.get("trainer") or {})
        trainer.update(_TRAINER_OVERRIDES)
        trainer["max_epochs"] = self.budget_epochs
        trainer["default_root_dir"] = str(root)
        args = _callback_entry(self.config)
        args["search"] = False
        if policy_file is not None:
            args["initial_policy"] = str(policy_file)
        trainer["callbacks"] = [{"class_path": "evoaug.EvoAugCallback", "init_args": args}]
        config["trainer"] = trainer
        return config

    def prepare(self, run_dir: Path) -> dict[str, Any]:
        """Check the recipe and prepare its data once, before any worker starts.

        Instantiates the recipe (a bad ``model``/``data`` config fails here, not in every
        worker), runs the datamodule's ``prepare_data`` (downloads happen once), and writes
        ``samples.pt`` (clean validation images per group) for the report.

        Returns:
            What ``run.json`` records: the dataset's ``describe()``, the model, the groups.

        """
        with tempfile.TemporaryDirectory(prefix="evoaug-prepare-") as tmp:
            with _isolated_globals(), _quiet_lightning():
                cli = _instantiate(self.candidate_config(tmp, seed=self.seed))
                datamodule = cli.datamodule
                datamodule.prepare_data()
                datamodule.setup("fit")
                callback = _find_callback(cli.trainer)
                probes = _probes(datamodule.train_dataloader(), datamodule, callback, self.seed)
            write_samples(run_dir / SAMPLES_FILE, *probes.pool)
            describe = getattr(datamodule, "describe", None)
            return {
                "dataset": describe() if callable(describe) else None,
                "model": type(cli.model).__name__,
                "groups_source": probes.groups_source,
            }

    def __call__(self, policy: Policy, *, seed: int) -> dict[str, float]:
        """Train a fresh model with ``policy`` for ``budget_epochs`` epochs; its objectives.

        Raises:
            EvoAugError: Training was interrupted or the trained model could not be scored
                (e.g. non-finite outputs); the search records the candidate as failed.

        """
        with tempfile.TemporaryDirectory(prefix="evoaug-candidate-") as tmp:
            policy_file = Path(tmp) / "policy.yaml"
            policy.to_yaml(policy_file)
            with _isolated_globals(), _quiet_lightning():
                cli = _instantiate(self.candidate_config(tmp, seed=seed, policy_file=policy_file))
                trainer, model = cli.trainer, cli.model
                _fit(trainer, model, cli.datamodule)
                if trainer.interrupted:
                    raise EvoAugError("training was interrupted")
                return _score(trainer, model, cli.datamodule, policy, seed)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the recipe as loaded: a resumed search must train as the first run did."""
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return (
            f"RecipeTrainer(recipe={self.recipe!r}, budget_epochs={self.budget_epochs}, "
            f"objectives={self.objectives})"
        )


def _fit(trainer: Any, model: Any, datamodule: Any) -> None:
    """``trainer.fit``, with Lightning's handling of Ctrl-C undone.

    Lightning answers Ctrl-C with its shutdown, ``sys.exit(1)``, and ignores Ctrl-C from then
    on. A search interrupted in the middle of a candidate must stop as on any other Ctrl-C
    (saying how to resume, status 130): the exit becomes a ``KeyboardInterrupt`` again, and the
    handler of SIGINT is the one it was.
    """
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(model, datamodule=datamodule)
    except SystemExit as err:
        if not trainer.interrupted:
            raise
        with contextlib.suppress(ValueError, TypeError):  # (not the main thread; no handler)
            signal.signal(signal.SIGINT, handler)
        raise KeyboardInterrupt from err


def _find_callback(trainer: Any) -> EvoAugCallback:
    for callback in trainer.callbacks:
        if isinstance(callback, EvoAugCallback):
            return callback
    raise EvoAugError("the candidate's Trainer has no EvoAugCallback")  # pragma: no cover


def _val_loader(datamodule: Any, index: int) -> Any:
    """The datamodule's validation loader ``index``: candidates are scored on held-out data."""
    try:
        loaders = datamodule.val_dataloader()
    except Exception as err:  # Lightning raises when the datamodule defines no validation data
        raise ConfigError(
            "the offline search scores candidates on held-out validation data: the recipe's "
            f"datamodule must provide `val_dataloader()` ({type(err).__name__}: {err})"
        ) from err
    return pick_loader(loaders, index)


def _probes(train_loader: Any, datamodule: Any, callback: EvoAugCallback, seed: int) -> ProbeSet:
    """The probes the online search would draw, with validation data from the datamodule."""
    cfg = callback.config
    return draw_probes(
        train_loader,
        _val_loader(datamodule, cfg.val_dataloader_idx),
        train_size=cfg.train_probe_size,
        val_size=cfg.val_probe_size,
        fairness_groups=cfg.fairness_groups,
        batch_keys=cfg.batch_keys,
        generator=torch.Generator().manual_seed(seed),
    )


def _score(
    trainer: Any, model: Any, datamodule: Any, policy: Policy, seed: int
) -> dict[str, float]:
    callback = _find_callback(trainer)
    cfg = callback.config
    loader = trainer.train_dataloader or datamodule.train_dataloader()
    probes = _probes(loader, datamodule, callback, seed)
    evaluator = Evaluator(
        objectives=cfg.objectives,
        lookahead_steps=0,
        batch_size=1,
        recalibrate_bn=False,
        feature_layer=cfg.feature_layer,
        fairness_metric=cfg.fairness_metric,
        normalize=callback.augmenter.normalize,
    )
    with detached_trainer(model):  # let the evaluator copy the module without its Trainer
        result = evaluator.evaluate(
            model,
            cfg.loss_fn or F.cross_entropy,
            OptimizerSpec("sgd", lr=0.1),  # unused: no look-ahead
            probes.train,
            probes.val,
            [policy],
            seed=seed,
        )[0]
    if not result.ok:
        raise EvoAugError(f"the trained model could not be scored: {result.failure}")
    return dict(result.objectives)
