"""The per-candidate context the objectives read: :class:`Context`.

The concrete :class:`evoaug.objectives.CandidateContext`: clean and augmented passes over the
training probe, the model at θ and after the look-ahead (θ'), and their predictions on the
validation probe. It runs the look-ahead at most once per candidate, whichever objectives ask
for it and in whatever order; what all candidates share is on its :class:`~._call.Call`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import nn

from evoaug._probe import Probe
from evoaug.evaluate._alignment import ValidationGradients, alignment, check_last_linear
from evoaug.evaluate._call import Call, Pass
from evoaug.evaluate._isolation import (
    derive_seed,
    preserved_rng,
    recalibrate_batchnorm,
    restore_modes,
    seed_global_rng,
)
from evoaug.exceptions import ConfigError
from evoaug.objectives import CandidateFailure, ProbePredictions
from evoaug.policy import Policy

__all__ = ["BLOCK", "NOT_SCALAR", "Context"]

T = TypeVar("T")

# Clean passes are computed in fixed blocks of the shuffled training probe, each block with its
# own augmentation seed, so a pass over n images is a prefix of a pass over more (difficulty and
# diversity share their first draw) and does not depend on which objective asked first.
BLOCK = 64

# Look-ahead steps are augmented together, up to this many images (and tensor elements, about
# 64 MB of float32) per policy call.
AUGMENT_CHUNK = 512
AUGMENT_ELEMENTS = 1 << 24

NOT_SCALAR = "`loss_fn` must return a scalar (mean) loss tensor, got {got}"


def _shape(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return type(value).__name__


def _predict(outputs: torch.Tensor) -> torch.Tensor:
    """Class predictions: argmax of logits ``[N, C]``, or ``logit > 0`` for ``[N]``/``[N, 1]``."""
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        return (outputs.reshape(-1) > 0).long()
    return outputs.argmax(dim=1)


class Context:
    """The concrete :class:`evoaug.objectives.CandidateContext` of one candidate."""

    def __init__(self, call: Call, policy: Policy) -> None:
        self._call = call
        self.policy = policy
        self.seed = call.seed
        self.train_probe, self.val_probe = call.train, call.val
        self.loss_fn, self.normalize = call.loss_fn, call.normalize
        self._lookahead_done = False
        self._stash: dict[str, torch.Tensor] | None = None
        self._passes: dict[str, Pass] = {}
        self._predictions: ProbePredictions | None = None
        self._vectorized: tuple[dict[str, torch.Tensor], torch.Tensor] | Exception | None = None

    # ------------------------------------------------------------------ helpers for objectives

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        cache = self._call.cache
        if key not in cache:
            cache[key] = compute()
        value: T = cache[key]
        return value

    def generator(self, stream: str) -> torch.Generator:
        try:
            gen = torch.Generator(device=self._call.device)
        except RuntimeError:  # a device type without its own generators
            gen = torch.Generator()
        return gen.manual_seed(derive_seed(self.seed, stream))

    def augment(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self._augment(images, generator, "")

    def _augment(
        self, images: torch.Tensor, generator: torch.Generator, where: str
    ) -> torch.Tensor:
        out = self.policy(images, generator=generator)
        if not bool(torch.isfinite(out).all()):
            raise CandidateFailure(f"the policy produced non-finite images{where}")
        return out

    def train_subset(self, size: int) -> Probe:
        n = min(size, len(self.train_probe))
        return self.shared(
            f"evoaug.train_subset.{n}", lambda: self.train_probe.select(self._call.subset_order[:n])
        )

    def features(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return self._call.outputs_and_features(model, images)[1]

    def clean_pass(self, size: int, draw: int | None = None) -> Pass:
        call = self._call
        n = min(size, len(self.train_probe))
        outputs, features = [], []
        for block in range(-(-n // BLOCK)):
            key = f"evoaug.clean_pass.{block}" if draw is None else f"pass.{draw}.{block}"
            cache = call.cache if draw is None else self._passes
            if key not in cache:
                index = call.subset_order[block * BLOCK : (block + 1) * BLOCK]
                images = call.train.images[index]
                if draw is not None:
                    gen = self.generator(key)
                    images = self._augment(images, gen, f" (draw {draw}, block {block})")
                cache[key] = call.outputs_and_features(self.clean_model(), images)
            out, feat = cache[key]
            outputs.append(out)
            features.append(feat)
        return torch.cat(outputs)[:n], torch.cat(features)[:n]

    def validation_gradients(self) -> ValidationGradients:
        """θ's last-layer validation gradients, once per evaluation.

        Raises:
            ConfigError: The model's outputs are not its feature layer's (an ``nn.Linear``).
        """
        return self.shared("evoaug.val_gradients", self._val_gradients)

    def alignment_gains(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        gradients = self.validation_gradients()
        labels = self.train_subset(size).labels

        def cosines(outputs: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
            return torch.stack(
                [
                    alignment(outputs, features, labels, gradients.balanced),
                    alignment(outputs, features, labels, gradients.worst),
                ]
            )

        clean = self.shared(
            f"evoaug.clean_alignment.{len(labels)}", lambda: cosines(*self.clean_pass(size))
        )
        gains = cosines(*self.clean_pass(size, draw=0)) - clean
        if not bool(torch.isfinite(gains).all()):
            raise CandidateFailure("non-finite gradient alignment of the augmented images")
        return gains[0], gains[1]

    def coverage_gains(self, size: int) -> torch.Tensor:
        """Per validation image: how much closer the policy brings the training images to it.

        The distance from the image's features to its nearest training-probe image's, clean
        training images alone minus clean and augmented (draw 0) together, over the mean clean
        distance of the image's group: ``[M]``, 0 where augmenting covers nothing new. An op
        whose images resemble a group the training data lacks covers that group.
        """
        val = self.validation_gradients().features
        clean = self.clean_pass(size)[1].float()
        base = self.shared(
            f"evoaug.coverage_base.{len(clean)}", lambda: torch.cdist(val, clean).min(dim=1).values
        )
        both = torch.cat([clean, self.clean_pass(size, draw=0)[1].float()])
        nearest = torch.cdist(val, both).min(dim=1).values
        groups = self.val_probe.groups
        scale = torch.empty_like(base)
        for group in torch.unique(groups) if groups is not None else [None]:
            mask = torch.ones_like(base, dtype=torch.bool) if group is None else groups == group
            scale[mask] = base[mask].mean().clamp_min(1e-12)
        return (base - nearest) / scale

    def _val_gradients(self) -> ValidationGradients:
        """θ's last-layer validation gradients (eval mode), once per evaluation."""
        call, val = self._call, self.val_probe
        model = self.clean_model()
        outputs, features = call.outputs_and_features(model, val.images)
        check_last_linear(model, call.feature_layer, outputs[:8], features[:8])
        return ValidationGradients(outputs, features.float(), val.labels, val.groups)

    # ------------------------------------------------------------------ models

    def clean_model(self) -> nn.Module:
        self._stash_lookahead()
        model = self._call.load_theta()
        model.eval()
        return model

    def _stash_lookahead(self) -> None:
        """Keep θ' aside before the scratch loads θ (again) after this candidate's look-ahead."""
        call = self._call
        if self._lookahead_done and call.owner is self and self._stash is None:
            self._stash = {k: v.clone() for k, v in call.scratch.state_dict().items()}

    def lookahead_model(self) -> nn.Module:
        call = self._call
        if self._lookahead_done and call.owner is not self:
            if self._stash is None:
                # Another candidate's look-ahead has taken the scratch since (an objective that
                # scores all candidates together reads θ' after all were scored): train again,
                # with the same seeds.
                self._lookahead_done = False
            else:
                call.scratch.load_state_dict(self._stash)
                call.holds_theta, call.owner = False, self
        if not self._lookahead_done:
            self._run_lookahead()
        call.scratch.eval()
        return call.scratch

    def lookahead_predictions(self) -> ProbePredictions:
        if self._predictions is None:
            self._predictions = self._val_predictions(self.lookahead_model(), "after look-ahead")
        return self._predictions

    def reference_predictions(self) -> ProbePredictions:
        return self.shared("evoaug.reference_predictions", self._reference_predictions)

    def _reference_predictions(self) -> ProbePredictions:
        """θ on the validation probe, its BatchNorm statistics recalibrated as θ''s are.

        Computed once per call, by whichever candidate asks first; the scratch holds θ again
        afterwards, and the global RNG streams (dropout during recalibration) are untouched.
        """
        call = self._call
        self._stash_lookahead()
        model = call.load_theta()
        if call.recalibrate:
            call.holds_theta = False  # the statistics change below
            with preserved_rng(call.device):
                seed_global_rng(call.device, derive_seed(self.seed, "recalibration"))
                restore_modes(model, call.train_modes)
                self._recalibrate(model)
        model.eval()
        predictions = self._val_predictions(model, "of the current weights")
        call.load_theta()
        return predictions

    def _val_predictions(self, model: nn.Module, which: str) -> ProbePredictions:
        call, val = self._call, self.val_probe
        with torch.no_grad():
            chunks = torch.split(val.images, call.chunk)
            logits = torch.cat([call.forward(model, x) for x in chunks])
        if not bool(torch.isfinite(logits).all()):
            raise CandidateFailure(f"non-finite outputs on the validation probe {which}")
        groups = None if val.groups is None else val.groups.cpu().numpy()
        return val.labels.cpu().numpy(), _predict(logits).cpu().numpy(), groups

    def lookahead_batches(
        self, gen: torch.Generator
    ) -> Iterator[tuple[int, tuple[torch.Tensor, ...]]]:
        """The look-ahead minibatches, augmented a chunk of steps at a time.

        One policy call on the images of several steps costs about what one call on a single
        step's images costs (the per-op overhead dominates at look-ahead batch sizes, on the GPU
        above all), so steps are augmented together, up to :data:`AUGMENT_CHUNK` images per
        call and :data:`AUGMENT_ELEMENTS` tensor elements. Yields ``(first step, that chunk's
        per-step image batches)``.
        """
        call = self._call
        images = call.train.images
        per_step = max(call.order.shape[1], 1)
        per_chunk = min(AUGMENT_CHUNK, AUGMENT_ELEMENTS // max(images[0].numel(), 1))
        steps_per_chunk = max(1, per_chunk // per_step)
        for first in range(0, call.steps, steps_per_chunk):
            index = call.order[first : first + steps_per_chunk]
            last = first + index.shape[0]
            where = f" at look-ahead steps {first + 1}-{last} of {call.steps}"
            x = self._augment(images[index.reshape(-1)], gen, where)
            yield first, torch.split(x, per_step)

    def set_lookahead_result(self, state: dict[str, torch.Tensor], losses: torch.Tensor) -> None:
        """Take the look-ahead's result from a vectorized run (see ``_vectorized``).

        ``state`` is the state dict after the k steps, before recalibration; ``losses`` the
        ``[k]`` training losses. :meth:`lookahead_model` then loads it instead of training.
        """
        self._vectorized = (state, losses)

    def fail_lookahead(self, failure: Exception) -> None:
        """Record that a vectorized run found this candidate's look-ahead failing."""
        self._vectorized = failure

    @property
    def lookahead_failed(self) -> bool:
        """Whether a vectorized run recorded a failure for this candidate."""
        return isinstance(self._vectorized, Exception)

    def reset_lookahead(self) -> None:
        """Forget a vectorized result: the look-ahead will train this candidate alone."""
        self._vectorized = None

    def _run_lookahead(self) -> None:
        call = self._call
        model = call.load_theta()
        call.holds_theta, call.owner = False, self  # from here on the scratch is being trained
        restore_modes(model, call.train_modes)
        seed_global_rng(call.device, derive_seed(self.seed, "dropout"))
        if not call.steps:  # lookahead_steps=0: score θ as it is
            model.eval()
            self._lookahead_done = True
            return
        result, self._vectorized = self._vectorized, None
        if isinstance(result, Exception):
            raise result
        if result is None:
            with call.layout.training():
                losses = self._train_steps(model)
        else:
            state, losses = result
            model.load_state_dict(state)
        bad = torch.nonzero(~torch.isfinite(losses))
        if bad.numel():
            step = int(bad[0, 0]) + 1
            raise CandidateFailure(f"non-finite loss at look-ahead step {step} of {call.steps}")
        if call.recalibrate:
            # Its own stream: dropout during recalibration draws the same masks whether the
            # steps ran here or vectorized (which leave the global stream in different places).
            seed_global_rng(call.device, derive_seed(self.seed, "recalibration"))
            self._recalibrate(model)
        model.eval()
        self._lookahead_done = True

    def _recalibrate(self, model: nn.Module) -> None:
        """BatchNorm statistics of ``model`` recomputed from the clean recalibration images."""
        call = self._call
        clean = self.train_subset(call.recalibrate or 0).images
        recalibrate_batchnorm(model, clean, call.forward, chunk=call.recalibration_chunk)

    def _train_steps(self, model: nn.Module) -> torch.Tensor:
        """Train ``model`` for the k look-ahead steps, one candidate alone; return the losses."""
        call = self._call
        optimizer = call.optimizer.build(p for p in model.parameters() if p.requires_grad)
        gen = self.generator("lookahead")
        losses = torch.empty(call.steps, device=call.device)
        labels = call.train.labels
        try:
            for first, x_steps in self.lookahead_batches(gen):
                for offset, x in enumerate(x_steps):
                    step = first + offset
                    loss = call.loss_fn(call.forward(model, x), labels[call.order[step]])
                    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
                        raise ConfigError(NOT_SCALAR.format(got=_shape(loss)))
                    optimizer.zero_grad(set_to_none=True)
                    torch.autograd.backward(loss)
                    optimizer.step()
                    losses[step] = loss.detach()
        finally:
            optimizer.zero_grad(set_to_none=True)
        return losses
