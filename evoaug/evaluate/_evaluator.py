"""The Evaluator: scores candidate policies on an isolated copy of the live model.

One :meth:`Evaluator.evaluate` call scores a generation. All candidates share one seed (common
random numbers: the same minibatch order, augmentation seeds and dropout masks), one scratch copy
of the model, and the clean baselines (clean loss, clean features). Each candidate gets a
:class:`Context` that runs the look-ahead at most once, however many objectives need it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from evoaug._probe import Probe
from evoaug.evaluate._call import Call, LossFn
from evoaug.evaluate._context import Context
from evoaug.evaluate._isolation import derive_seed, model_device, preserved_rng, seed_global_rng
from evoaug.evaluate._optim import OptimizerSpec
from evoaug.evaluate._validate import check_call, check_labels, check_settings
from evoaug.evaluate._vectorized import vectorized_lookahead
from evoaug.objectives import CandidateFailure, Objective
from evoaug.policy import Policy

__all__ = ["CandidateResult", "Evaluator"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CandidateResult:
    """The outcome of one candidate.

    Attributes:
        objectives: Objective name to value, in the requested order; all NaN on failure.
        failure: ``None``, or why the candidate failed (``"OpError: ..."``,
            ``"non-finite loss at look-ahead step 3 of 20"``).
        seconds: Wall time spent on this candidate.

    Example:
        >>> result = CandidateResult({"accuracy": float("nan")}, "OpError: ...", 0.1)
        >>> result.ok
        False

    """

    objectives: dict[str, float]
    failure: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the candidate was scored."""
        return self.failure is None


@dataclass
class _Score:
    """A candidate's scores while a generation is being evaluated."""

    index: int
    values: dict[str, float] = field(default_factory=dict)
    prepared: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None

    def fail(self, reason: str) -> None:
        log.warning("candidate %d failed: %s", self.index, reason)
        self.failure = reason

    def result(self, objectives: Sequence[str], shared_seconds: float) -> CandidateResult:
        if self.failure is not None:
            values = dict.fromkeys(objectives, math.nan)
        else:
            values = {name: self.values[name] for name in objectives}
        return CandidateResult(values, self.failure, self.seconds + shared_seconds)


class Evaluator:
    """Score candidate policies on the live model: accuracy, difficulty, diversity, fairness.

    See ``DESIGN.md`` ("Objectives") for the definitions, and :mod:`evoaug.objectives` for each
    objective. The look-ahead trains an isolated copy for ``lookahead_steps`` steps on
    policy-augmented minibatches of the training probe, with a fresh optimizer of the caller's
    type at its current learning rate, in training mode (the live model's per-layer modes when it
    is training, so frozen BatchNorm stays frozen), then recalibrates BatchNorm statistics on
    clean training-probe images. All objectives are "higher is better".

    The model must return logits ``[N, C]`` (or ``[N]`` / ``[N, 1]`` for a binary task, where a
    logit above 0 predicts class 1); ``loss_fn(outputs, labels)`` must return a scalar mean loss.

    Cost per candidate: ``lookahead_steps`` training steps, plus no-grad forward passes over
    the validation probe, ``recalibration_size`` images (training mode), ``difficulty_size``
    augmented images and ``diversity_size`` more (diversity's first draw is difficulty's);
    the clean baselines are computed once per call. On CPU a forward pass costs about half a
    training step, so the sizes, not the bookkeeping, set the overhead beyond the look-ahead.

    Args:
        objectives: Registered objective names, in the order results report them.
        lookahead_steps: k, optimizer steps per candidate (DESIGN.md: 5 is noise, ~20 works).
            ``0`` scores the model as it is, without look-ahead or recalibration: θ' = θ (the
            offline search scores models trained from scratch with the candidate this way).
        batch_size: Look-ahead minibatch size.
        recalibrate_bn: Recompute BatchNorm running statistics after the look-ahead.
        recalibration_size: Clean training-probe images used to recalibrate.
        feature_layer: Name (as in ``model.named_modules()``) of the module whose input is the
            feature vector for diversity; default: the last ``nn.Linear``, else pixels.
        fairness_metric: See :class:`evoaug.objectives.Fairness`.
        normalize: Applied to images after augmentation and before every model call.
        difficulty_size: Training-probe images for difficulty.
        diversity_size: Training-probe images for diversity (at least 2).
        vectorize: Run all candidates' look-ahead steps as one batched model
            (``torch.func.vmap`` over stacked copies; see ``evoaug/evaluate/_vectorized.py``).
            ``"auto"`` (default) vectorizes on accelerators, where a look-ahead step is bound
            by kernel launches and P candidates cost about one, and not on the CPU, where the
            grouped convolutions that vmap produces run slower than separate ones. Results agree
            with the one-by-one path to float rounding. A model that vmap cannot run falls back
            to one by one.
        estimator: How accuracy and fairness are estimated: ``"lookahead"`` (θ' after the
            look-ahead, as above) or ``"alignment"`` (the gain in last-layer gradient alignment
            with the validation gradient, augmented over clean training images: forward passes
            only; see ``evoaug/evaluate/_alignment.py``). The model's outputs must then be its
            last ``nn.Linear`` (the feature layer).
        alignment_size: Training-probe images the alignment estimator averages over.
        repeats: Score every candidate this many times, each with its own seed (minibatch
            order, augmentation draws, dropout masks), and report the mean of each objective.
            One look-ahead is a noisy estimate; ``bench/proxy_fidelity.py`` measured the rank
            correlation of look-ahead accuracy with full-training accuracy at 0.60 with one
            repeat and 0.74-0.83 with 4 to 16. Costs ``repeats`` times as much. A candidate
            that fails in any repeat fails.

    Raises:
        ConfigError: An argument is out of range or an objective is unknown; the message names
            the argument, the allowed values and what was received.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from evoaug import Policy
        >>> from evoaug.evaluate import OptimizerSpec, Probe
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
        >>> x, y = torch.rand(32, 1, 4, 4), torch.arange(32) % 2
        >>> probe = Probe(x, y, groups=y)
        >>> ev = Evaluator(lookahead_steps=2, batch_size=8)
        >>> results = ev.evaluate(model, nn.functional.cross_entropy, OptimizerSpec("sgd", 0.1),
        ...                       probe, probe, [Policy.preset("identity")], seed=0)
        >>> sorted(results[0].objectives), results[0].objectives["difficulty"]
        (['accuracy', 'difficulty', 'diversity', 'fairness'], 0.0)

    """

    def __init__(
        self,
        *,
        objectives: Sequence[str] = ("accuracy", "difficulty", "diversity", "fairness"),
        lookahead_steps: int = 20,
        batch_size: int = 64,
        recalibrate_bn: bool = True,
        recalibration_size: int = 128,
        feature_layer: str | None = None,
        fairness_metric: str = "worst_group_accuracy",
        normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
        difficulty_size: int = 128,
        diversity_size: int = 64,
        vectorize: bool | Literal["auto"] = "auto",
        repeats: int = 1,
        estimator: str = "lookahead",
        alignment_size: int = 256,
    ) -> None:
        self.objectives: dict[str, Objective] = check_settings(
            objectives=objectives,
            lookahead_steps=lookahead_steps,
            batch_size=batch_size,
            recalibrate_bn=recalibrate_bn,
            recalibration_size=recalibration_size,
            feature_layer=feature_layer,
            fairness_metric=fairness_metric,
            normalize=normalize,
            difficulty_size=difficulty_size,
            diversity_size=diversity_size,
            vectorize=vectorize,
            repeats=repeats,
            estimator=estimator,
            alignment_size=alignment_size,
        )
        self.estimator, self.alignment_size = estimator, alignment_size
        self.vectorize = vectorize
        self.repeats = repeats
        self._vectorize_failed = False
        self.lookahead_steps, self.batch_size = lookahead_steps, batch_size
        self.recalibrate_bn, self.recalibration_size = recalibrate_bn, recalibration_size
        self.feature_layer, self.fairness_metric = feature_layer, fairness_metric
        self.normalize = normalize
        self.difficulty_size, self.diversity_size = difficulty_size, diversity_size
        # Objectives that need θ run first, while the scratch copy still holds θ.
        self._run_order = sorted(self.objectives.items(), key=lambda kv: kv[1].uses_lookahead)

    @property
    def objective_names(self) -> tuple[str, ...]:
        """The requested objectives, in result order."""
        return tuple(self.objectives)

    def scoring_images(self, *, train_probe: int, val_probe: int) -> int:
        """Images one candidate forwards without gradients to be scored, per repeat.

        The validation probe (when an objective reads θ'), BatchNorm recalibration (after a
        look-ahead), and the augmented draws of difficulty and diversity; the clean passes,
        computed once per evaluation, are left out. Custom objectives' own passes are not
        known here. The callback prices its schedule with it.

        Args:
            train_probe: Training-probe images (caps the recalibration, difficulty and
                diversity passes).
            val_probe: Validation-probe images.

        Example:
            >>> Evaluator().scoring_images(train_probe=512, val_probe=256)  # 256 + 128 + 128 + 64
            576

        """
        objectives = self.objectives
        lookahead = any(o.uses_lookahead for o in objectives.values())
        images = 0
        if lookahead:
            images += val_probe
            if self.recalibrate_bn and self.lookahead_steps:
                images += min(self.recalibration_size, train_probe)
        first_draw = 0
        if self.estimator == "alignment" and {"accuracy", "fairness"} & set(objectives):
            first_draw = min(self.alignment_size, train_probe)  # draw 0, shared
        if "difficulty" in objectives:
            first_draw = max(first_draw, min(self.difficulty_size, train_probe))
        if "diversity" in objectives:
            diversity = min(self.diversity_size, train_probe)
            first_draw = max(first_draw, diversity)  # draw 0 is shared with difficulty
            images += diversity  # draw 1
        return images + first_draw

    def evaluate(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: OptimizerSpec,
        train_probe: Probe,
        val_probe: Probe,
        policies: Sequence[Policy],
        *,
        seed: int,
    ) -> list[CandidateResult]:
        """Score every policy; the model, its modes, grads and all RNG states are left untouched.

        Args:
            model: The live model (not modified; a scratch copy is trained).
            loss_fn: ``loss_fn(outputs, labels) -> scalar mean loss``.
            optimizer: The training optimizer's description, e.g.
                ``OptimizerSpec.from_optimizer(opt)``.
            train_probe: Look-ahead minibatches, difficulty and diversity images.
            val_probe: Accuracy and fairness images; ``groups`` needed for fairness.
            policies: The candidates.
            seed: Shared by all candidates; the same seed gives the same values.

        Returns:
            One :class:`CandidateResult` per policy, in order. A candidate that raises or yields
            NaN/inf has all objectives NaN and its ``failure`` set; the others are unaffected.

        Raises:
            ConfigError: Bad arguments, checked before any work (e.g. fairness without groups,
                a probe smaller than ``batch_size``, an unknown ``feature_layer``).
            InputError: A probe is not a :class:`Probe`, or holds labels the model has no
                output for.

        """
        check_call(
            model,
            loss_fn,
            optimizer,
            train_probe,
            val_probe,
            policies,
            seed,
            objectives=self.objectives,
            batch_size=self.batch_size,
            lookahead_steps=self.lookahead_steps,
            feature_layer=self.feature_layer,
        )
        runs = [
            self._generation(model, loss_fn, optimizer, train_probe, val_probe, policies, s)
            for s in self._repeat_seeds(seed)
        ]
        return runs[0] if len(runs) == 1 else [_mean(rs) for rs in zip(*runs, strict=True)]

    def _repeat_seeds(self, seed: int) -> list[int]:
        """The seed of each repeat: ``seed`` itself first, so one repeat is the plain call."""
        return [seed] + [derive_seed(seed, f"repeat.{r}") for r in range(1, self.repeats)]

    def _generation(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: OptimizerSpec,
        train_probe: Probe,
        val_probe: Probe,
        policies: Sequence[Policy],
        seed: int,
    ) -> list[CandidateResult]:
        device = model_device(model)
        # The look-ahead trains: a caller's torch.no_grad() must not fail every candidate.
        with preserved_rng(device), torch.enable_grad():
            call = Call(
                model,
                loss_fn,
                optimizer,
                train_probe,
                val_probe,
                seed,
                steps=self.lookahead_steps,
                batch_size=self.batch_size,
                recalibrate=(
                    self.recalibration_size
                    if self.recalibrate_bn and self.lookahead_steps
                    else None
                ),
                feature_layer=self.feature_layer,
                normalize=self.normalize,
            )
            outputs = call.check_forward()
            check_labels(outputs, {"train_probe": call.train, "val_probe": call.val})
            contexts = [Context(call, p) for p in policies]
            if self._aligns and contexts:
                contexts[0].validation_gradients()  # a model it cannot score fails here, once
            shared = 0.0
            if self._vectorizes(call) and len(contexts) > 1:
                start = time.perf_counter()
                # A model or loss vmap cannot run will not run next generation either.
                self._vectorize_failed = not vectorized_lookahead(call, contexts)
                shared = (time.perf_counter() - start) / len(contexts)
            scores = [self._score(call, i, ctx) for i, ctx in enumerate(contexts)]
            shared += self._score_together(contexts, scores)
        return [score.result(self.objective_names, shared) for score in scores]

    @property
    def _aligns(self) -> bool:
        """Whether an objective reads gradient alignment."""
        return self.estimator == "alignment" and bool(
            {"accuracy", "fairness"} & set(self.objectives)
        )

    def _vectorizes(self, call: Call) -> bool:
        uses_lookahead = any(o.uses_lookahead for o in self.objectives.values())
        if not (uses_lookahead and self.lookahead_steps):
            return False
        if self._vectorize_failed:
            return False
        if self.vectorize == "auto":
            return call.device.type != "cpu"
        return self.vectorize

    def _score(self, call: Call, index: int, ctx: Context) -> _Score:
        """One candidate's objectives; those that score together are only prepared here."""
        start = time.perf_counter()
        score = _Score(index)
        try:
            seed_global_rng(call.device, derive_seed(call.seed, "candidate"))
            for name, objective in self._run_order:
                if objective.scores_together:
                    score.prepared[name] = objective.prepare(ctx)
                else:
                    score.values[name] = objective(ctx)
        except CandidateFailure as err:
            score.fail(str(err))
        except Exception as err:
            score.fail(f"{type(err).__name__}: {err}")
        score.seconds = time.perf_counter() - start
        return score

    def _score_together(self, contexts: Sequence[Context], scores: Sequence[_Score]) -> float:
        """Score the objectives that score all candidates at once; return seconds per candidate.

        Candidates that already failed are left out; a call that raises fails every candidate
        it scored, a non-finite value fails its own.
        """
        together = [(name, o) for name, o in self.objectives.items() if o.scores_together]
        scored = [score for score in scores if score.ok]
        if not together or not scored:
            return 0.0
        start = time.perf_counter()
        for name, objective in together:
            live = [score for score in scored if score.ok]
            try:
                values = objective.score_many(
                    [contexts[score.index] for score in live],
                    [score.prepared[name] for score in live],
                )
            except CandidateFailure as err:
                values, reason = [math.nan] * len(live), str(err)
            except Exception as err:
                values, reason = [math.nan] * len(live), f"{type(err).__name__}: {err}"
            else:
                reason = ""
            for score, value in zip(live, values, strict=True):
                if math.isfinite(value):
                    score.values[name] = value
                else:
                    score.fail(reason or f"objective {name!r} is non-finite ({value})")
        return (time.perf_counter() - start) / len(scored)

    def __repr__(self) -> str:
        return (
            f"Evaluator(objectives={self.objective_names}, lookahead_steps={self.lookahead_steps}, "
            f"batch_size={self.batch_size}, recalibrate_bn={self.recalibrate_bn}, "
            f"vectorize={self.vectorize!r}, repeats={self.repeats}, "
            f"estimator={self.estimator!r})"
        )


def _mean(results: Sequence[CandidateResult]) -> CandidateResult:
    """One candidate's repeats combined: mean objectives, the first failure, total seconds."""
    seconds = sum(r.seconds for r in results)
    failed = next((r for r in results if not r.ok), None)
    if failed is not None:
        return replace(failed, seconds=seconds)
    names = results[0].objectives
    means = {name: math.fsum(r.objectives[name] for r in results) / len(results) for name in names}
    return CandidateResult(means, None, seconds)
