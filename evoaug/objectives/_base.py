"""The objective base class, the context objectives read, and the objective registry.

An objective scores one candidate policy on the live model; every objective is "higher is
better". The evaluator (:class:`evoaug.evaluate.Evaluator`) hands each objective a
:class:`CandidateContext`: the candidate's policy, the probes, and the cached, isolated models
(current weights θ, and θ' after the look-ahead). Built-in and custom objectives use the same
context, so a custom objective is a few lines::

    @register_objective("darkness")
    def darkness(ctx):
        sub = ctx.train_subset(64)
        return -float(ctx.augment(sub.images, ctx.generator("darkness")).mean())
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from evoaug.exceptions import ConfigError

if TYPE_CHECKING:
    from evoaug._probe import Probe
    from evoaug.policy import Policy

__all__ = [
    "ESTIMATORS",
    "CandidateContext",
    "CandidateFailure",
    "Objective",
    "check_estimator",
    "ProbePredictions",
    "available_objectives",
    "get_objective",
    "register_objective",
    "unregister_objective",
]

T = TypeVar("T")

ESTIMATORS = ("lookahead", "alignment")
"""How accuracy and fairness are estimated: after a look-ahead (θ'), or by gradient alignment."""


def check_estimator(value: object) -> str:
    """``value`` if it is one of :data:`ESTIMATORS`, else a ConfigError listing them.

    Example:
        >>> check_estimator("alignment")
        'alignment'
    """
    if value not in ESTIMATORS:
        raise ConfigError(f"`estimator` must be one of {list(ESTIMATORS)}, got {value!r}")
    return str(value)


ProbePredictions = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]
"""``(y_true, y_pred, groups)`` on the validation probe (``groups`` is None without groups)."""


class CandidateFailure(Exception):
    """Raise inside an objective (or the evaluator) to mark the candidate as failed.

    The message becomes the candidate's ``failure`` reason, as written (without the type name
    that other exceptions get). The evaluator catches it; it never reaches the caller.

    Example:
        >>> str(CandidateFailure("the policy erased every image"))
        'the policy erased every image'

    """


class CandidateContext(Protocol):
    """What an objective may read about the candidate it scores.

    All models returned are isolated scratch copies: using them never changes the live model.
    Tensors are on the model's device. Everything derived from :attr:`seed` is the same for every
    candidate of one evaluation (common random numbers).

    Attributes:
        policy: The candidate policy.
        seed: The evaluation's seed, shared by all candidates.
        train_probe: The training probe (un-normalized images in ``[0, 1]``).
        val_probe: The validation probe, with its ``groups`` when the caller gave them.
        loss_fn: ``loss_fn(outputs, labels) -> scalar mean loss``.
        normalize: Applied after augmentation, before every model call (identity when unset).

    """

    policy: Policy
    seed: int
    train_probe: Probe
    val_probe: Probe
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    normalize: Callable[[torch.Tensor], torch.Tensor]

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The policy applied to ``images``; raises :class:`CandidateFailure` on NaN/inf."""
        ...

    def generator(self, stream: str) -> torch.Generator:
        """A fresh generator on the model's device, seeded from (:attr:`seed`, ``stream``)."""
        ...

    def train_subset(self, size: int) -> Probe:
        """The first ``size`` images of a seeded shuffle of the training probe (shared prefix)."""
        ...

    def clean_model(self) -> nn.Module:
        """The model at its current weights θ, in eval mode."""
        ...

    def lookahead_model(self) -> nn.Module:
        """The model at θ' (after the look-ahead and BatchNorm recalibration), in eval mode."""
        ...

    def lookahead_predictions(self) -> ProbePredictions:
        """``(y_true, y_pred, groups)`` of θ' on the validation probe (computed once)."""
        ...

    def reference_predictions(self) -> ProbePredictions:
        """``(y_true, y_pred, groups)`` of θ on the validation probe (once per evaluation).

        θ's BatchNorm statistics are recalibrated as θ''s are (when the evaluator recalibrates),
        so that comparing the two measures the look-ahead steps alone.
        """
        ...

    def features(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` features of ``images`` (see ``Evaluator(feature_layer=...)``), no grad."""
        ...

    def alignment_gains(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image of ``train_subset(size)``: how much better the policy's draw 0 points.

        The cosine of the image's last-layer loss gradient at θ with the validation gradient,
        augmented minus clean, toward the balanced direction and the worst group's (see
        ``evoaug/evaluate/_alignment.py``): two ``[N]`` tensors, positive where augmenting
        gives a more useful training step.
        """
        ...

    def clean_pass(self, size: int, draw: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(outputs, features)`` of θ (eval mode) on ``train_subset(size)``.

        With ``draw=None`` the images are clean (computed once per evaluation); with
        ``draw=d`` they are the policy's d-th independent draw (computed once per candidate,
        the same seeds for every candidate). Passes over fewer images are prefixes of passes
        over more.
        """
        ...

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per evaluation, then the cached value (``evoaug.*`` keys reserved)."""
        ...


class Objective(ABC):
    """Base class of objectives: ``__call__`` does the bookkeeping, ``_compute`` the work.

    Subclasses implement :meth:`_compute` (and optionally :meth:`_check`). The public
    :meth:`__call__` converts the result to ``float`` and turns NaN/inf into a
    :class:`CandidateFailure`; :meth:`check` validates probes before any work.

    Attributes:
        name: The registry name (set by :func:`register_objective`).
        uses_lookahead: Whether :meth:`_compute` needs θ'; objectives that do not are run first,
            while the scratch model still holds θ.
        scores_together: Whether the evaluator scores all candidates of a generation with one
            :meth:`score_many` call, with what :meth:`prepare` returned for each candidate while
            its models were at hand. For objectives with a large fixed cost per call (fairness
            builds a pandas-backed ``MetricFrame``); the values must equal one-by-one scoring.

    Example:
        >>> class Darkness(Objective):
        ...     uses_lookahead = False
        ...     def _compute(self, ctx):
        ...         return -ctx.train_probe.images.mean()
        >>> register_objective("darkness")(Darkness)
        <class '...Darkness'>
        >>> get_objective("darkness").name
        'darkness'
        >>> unregister_objective("darkness")

    """

    name: ClassVar[str] = ""
    uses_lookahead: bool = True
    scores_together: bool = False

    def check(self, train_probe: Probe, val_probe: Probe) -> None:
        """Validate the probes before any work.

        Raises:
            ConfigError: The probes cannot give this objective (e.g. fairness without groups).

        """
        self._check(train_probe, val_probe)

    def _check(self, train_probe: Probe, val_probe: Probe) -> None:  # noqa: B027 (optional hook)
        """Override to validate probes; the default accepts everything."""

    def __call__(self, ctx: CandidateContext) -> float:
        """Score the candidate in ``ctx``.

        Returns:
            The objective value, a finite float, higher is better.

        Raises:
            CandidateFailure: The value is NaN or infinite.

        """
        raw = self._compute(ctx)
        value = float(raw.item() if isinstance(raw, torch.Tensor) else raw)
        if not math.isfinite(value):
            raise CandidateFailure(f"objective {self.name!r} is non-finite ({value})")
        return value

    def prepare(self, ctx: CandidateContext) -> Any:
        """Per-candidate work of an objective that :attr:`scores_together`, in candidate order.

        Called while the candidate's models are available (the look-ahead, for instance); what
        it returns is handed back to :meth:`score_many` in ``prepared``. Raise
        :class:`CandidateFailure` to fail the candidate. The default returns ``None``.
        """
        return None

    def score_many(
        self, contexts: Sequence[CandidateContext], prepared: Sequence[Any] | None = None
    ) -> list[float]:
        """Score several candidates at once, in order; NaN marks a candidate that cannot be scored.

        Args:
            contexts: The candidates' contexts.
            prepared: What :meth:`prepare` returned for each of them (``None`` each when not
                given).

        Returns:
            One float per context (non-finite values fail their candidate in the evaluator).

        Raises:
            RuntimeError: :meth:`_compute_many` returned a value count other than one per
                context.

        """
        given = [None] * len(contexts) if prepared is None else list(prepared)
        if len(given) != len(contexts):
            raise RuntimeError(
                f"objective {self.name!r}: {len(given)} prepared values for {len(contexts)} "
                "candidates"
            )
        values = self._compute_many(contexts, given)
        if len(values) != len(contexts):
            raise RuntimeError(
                f"objective {self.name!r} returned {len(values)} values for {len(contexts)} "
                "candidates"
            )
        return [float(v.item() if isinstance(v, torch.Tensor) else v) for v in values]

    def _compute_many(
        self, contexts: Sequence[CandidateContext], prepared: Sequence[Any]
    ) -> Sequence[float | torch.Tensor]:
        """Override to score candidates together; the default scores one by one."""
        return [self._compute(ctx) for ctx in contexts]

    @abstractmethod
    def _compute(self, ctx: CandidateContext) -> float | torch.Tensor:
        """Return the objective value for ``ctx.policy``."""


class _FunctionObjective(Objective):
    """An objective made from a plain function ``fn(ctx) -> float``."""

    _fn: ClassVar[Callable[[CandidateContext], Any]]

    def _compute(self, ctx: CandidateContext) -> float | torch.Tensor:
        result = type(self)._fn(ctx)
        if isinstance(result, (int, float, torch.Tensor, np.floating, np.integer)):
            return result if isinstance(result, torch.Tensor) else float(result)
        raise CandidateFailure(
            f"objective {self.name!r} must return a number, got {type(result).__name__}"
        )


_REGISTRY: dict[str, type[Objective]] = {}


def register_objective(name: str, *, replace: bool = False) -> Callable[[T], T]:
    """Register an :class:`Objective` subclass, or a function ``fn(ctx) -> float``, by name.

    A function is wrapped in an :class:`Objective` that needs the look-ahead only if it asks for
    it. The decorated class gets ``name`` set; the decorator returns its argument unchanged.

    Args:
        name: The name used in ``Evaluator(objectives=...)`` and in results.
        replace: Allow replacing an objective already registered under ``name``.

    Raises:
        ConfigError: The name is empty or taken, or the target is neither an ``Objective``
            subclass nor a callable.

    Example:
        >>> @register_objective("mean_brightness")
        ... def mean_brightness(ctx):
        ...     return float(ctx.train_probe.images.mean())
        >>> "mean_brightness" in available_objectives()
        True
        >>> unregister_objective("mean_brightness")

    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"`name` must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not replace:
        raise ConfigError(
            f"objective {name!r} is already registered; choose another name or pass `replace=True`"
        )

    def decorator(target: T) -> T:
        if isinstance(target, type) and issubclass(target, Objective):
            target.name = name
            _REGISTRY[name] = target
        elif callable(target) and not isinstance(target, type):
            fn: Callable[[CandidateContext], Any] = target
            cls = type(
                f"{name}_objective", (_FunctionObjective,), {"name": name, "_fn": staticmethod(fn)}
            )
            _REGISTRY[name] = cls
        else:
            raise ConfigError(
                f"objective {name!r}: expected an Objective subclass or a function "
                f"`fn(ctx) -> float`, got {target!r}"
            )
        return target

    return decorator


def unregister_objective(name: str) -> None:
    """Remove a registered objective (mainly for tests and notebooks).

    Raises:
        ConfigError: No objective is registered under ``name``.

    """
    _lookup(name)
    del _REGISTRY[name]


def _lookup(name: str) -> type[Objective]:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        pass
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"unknown objective {name!r}.{hint} Available objectives: {available_objectives()}"
    )


def get_objective(name: str, **options: Any) -> Objective:
    """A fresh instance of the objective registered under ``name``.

    Args:
        name: A name from :func:`available_objectives`.
        **options: Passed to the objective's constructor (e.g. ``metric=`` for fairness).

    Raises:
        ConfigError: Unknown name (the message lists the available ones) or bad options.

    Example:
        >>> get_objective("fairness", metric="accuracy_difference").metric
        'accuracy_difference'

    """
    cls = _lookup(name)
    try:
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"objective {name!r} does not accept options {options}: {err}") from err


def available_objectives() -> list[str]:
    """Names of all registered objectives, sorted.

    Example:
        >>> available_objectives()[:4]
        ['accuracy', 'difficulty', 'diversity', 'fairness']

    """
    return sorted(_REGISTRY)
