"""Where evoaug meets Lightning: both namespaces, and the few internals it must read.

Lightning ships as two namespaces whose classes are distinct: ``pytorch_lightning`` and the
``lightning`` package's ``lightning.pytorch``. A Trainer accepts only callbacks that subclass its
own ``Callback``, and LightningCLI checks the same. :data:`CallbackBase` subclasses both when
``lightning`` is installed, so one ``EvoAugCallback`` works in either Trainer; everything evoaug
calls on Lightning is taken from the namespace of the Trainer it runs in (:func:`namespace`).

Lightning has no public API for two things the callback needs. They are read here, and only
here, each with a fallback, and ``tests/callback/test_lightning_internals.py`` fails with a
message naming the attribute when a Lightning release moves one (:data:`INTERNALS`):

- the validation loaders of a fit before its first validation ran
  (``fit_loop.epoch_loop.val_loop.setup_data()``), for the validation probe;
- how far an interrupted fit trained (``fit_loop.epoch_progress`` and
  ``fit_loop.epoch_loop.batch_progress``), to resume a search exactly.

Checked against Lightning :data:`TESTED_LIGHTNING` (pyproject's range; CI also runs the callback
tests on the newest release pip resolves).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytorch_lightning

_unified: types.ModuleType | None
try:  # the unified `lightning` package is optional
    import lightning.pytorch as _unified
except ImportError:  # pragma: no cover - depends on the environment
    _unified = None

__all__ = [
    "INTERNALS",
    "TESTED_LIGHTNING",
    "CallbackBase",
    "detached_trainer",
    "missing_internals",
    "namespace",
    "setup_val_dataloaders",
    "trained_epochs",
]

TESTED_LIGHTNING = ">=2.4,<2.7"
"""The Lightning releases the test suite runs on (pyproject's pin)."""

INTERNALS = (
    "fit_loop.epoch_loop.val_loop.setup_data",
    "fit_loop.epoch_progress.current.processed",
    "fit_loop.epoch_progress.current.started",
    "fit_loop.epoch_loop.batch_progress.is_last_batch",
)
"""Attribute paths of a Trainer that this module reads without a public API."""

if TYPE_CHECKING or _unified is None:
    CallbackBase = pytorch_lightning.Callback
else:

    class CallbackBase(pytorch_lightning.Callback, _unified.Callback):
        """A ``Callback`` of both namespaces: either Trainer (and LightningCLI) accepts it."""


def namespace(trainer: object) -> types.ModuleType:
    """``lightning.pytorch`` for its Trainers, else ``pytorch_lightning``.

    Example:
        >>> namespace(pytorch_lightning.Trainer(logger=False)).__name__
        'pytorch_lightning'
    """
    if _unified is not None and isinstance(trainer, _unified.Trainer):
        return _unified
    return pytorch_lightning


def rank_zero_info(trainer: object) -> Callable[[str], Any]:
    """The Trainer's namespace's ``rank_zero_info`` (its rank is set by that namespace)."""
    utilities: Any = namespace(trainer).utilities
    info: Callable[[str], Any] = utilities.rank_zero_info
    return info


def _resolve(obj: object, path: str) -> object:
    for name in path.split("."):
        obj = getattr(obj, name)
    return obj


def missing_internals(trainer: object) -> list[str]:
    """The paths of :data:`INTERNALS` that ``trainer`` lacks (empty when all are there)."""
    missing = []
    for path in INTERNALS:
        try:
            _resolve(trainer, path)
        except AttributeError:
            missing.append(path)
    return missing


def setup_val_dataloaders(trainer: Any) -> Any:
    """The validation loaders of a fit whose validation has not run yet, else ``None``.

    Lightning builds them when it first validates: with ``num_sanity_val_steps=0`` and a first
    generation before the first validation epoch (``check_val_every_n_epoch > 1``), they do not
    exist yet. Building them now is what that first validation would do.
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


def trained_epochs(trainer: Any, fallback: int) -> int:
    """The last epoch whose training batches all ran (a checkpoint can come mid-epoch).

    ``fallback`` is returned when the Trainer's progress trackers are not where Lightning 2.x
    keeps them.
    """
    try:
        progress = trainer.fit_loop.epoch_progress.current
        last_batch = bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)
        processed, started = int(progress.processed), int(progress.started)
    except AttributeError:
        return fallback
    trained = processed - 1
    if started > processed and last_batch:  # saved at the validation end of a trained epoch
        trained += 1
    return trained


@contextmanager
def detached_trainer(module: Any) -> Iterator[None]:
    """Within the block ``module.trainer`` is ``None``, so a deep copy does not copy the Trainer."""
    try:
        trainer = module.trainer
    except RuntimeError:  # not attached: nothing to detach
        trainer = None
    module.trainer = None
    try:
        yield
    finally:
        module.trainer = trainer
