"""The per-call state and the per-candidate context the objectives read.

:class:`_Call` holds what all candidates of one ``evaluate()`` share: the scratch copy of the
model, θ, the probes on the model's device, the minibatch order and the caches of clean passes.
:class:`_Context` is the concrete :class:`evoaug.objectives.CandidateContext`: it runs the
look-ahead at most once per candidate, whichever objectives ask for it and in whatever order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch
from torch import nn

from evoaug._probe import Probe
from evoaug.evaluate._isolation import (
    capture_modes,
    derive_seed,
    model_device,
    preserved_rng,
    recalibrate_batchnorm,
    restore_modes,
    scratch_copy,
    seed_global_rng,
)
from evoaug.evaluate._optim import OptimizerSpec
from evoaug.evaluate._validate import feature_module_name
from evoaug.exceptions import ConfigError
from evoaug.objectives import CandidateFailure, ProbePredictions
from evoaug.policy import Policy

__all__ = ["BLOCK", "NOT_SCALAR", "LossFn", "eval_chunk"]

T = TypeVar("T")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Pass = tuple[torch.Tensor, torch.Tensor]

# Clean passes are computed in fixed blocks of the shuffled training probe, each block with its
# own augmentation seed, so a pass over n images is a prefix of a pass over more (difficulty and
# diversity share their first draw) and does not depend on which objective asked first.
BLOCK = 64

# Look-ahead steps are augmented together, up to this many images (and tensor elements, about
# 64 MB of float32) per policy call.
AUGMENT_CHUNK = 512
AUGMENT_ELEMENTS = 1 << 24


def eval_chunk(device: torch.device) -> int:
    """Images per no-grad forward pass: 64 on CPU, else 512.

    On 2 CPU cores, 256 images forwarded in chunks of 64 took 0.65x (small CNN, 3x32x32) to
    0.87x (ResNet-18) the time of chunks of 128, in ``channels_last``: larger chunks fall out
    of the caches.
    """
    return 64 if device.type == "cpu" else 512


def recalibration_chunk(device: torch.device) -> int:
    """Images per BatchNorm recalibration pass: 128 on CPU, else 512.

    Larger than :func:`eval_chunk`: a recalibration in one pass gives the exact statistics of
    its images (the default 128), in several an average of per-chunk variances.
    """
    return 128 if device.type == "cpu" else 512


NOT_SCALAR = "`loss_fn` must return a scalar (mean) loss tensor, got {got}"


def _shape(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return type(value).__name__


def _identity(images: torch.Tensor) -> torch.Tensor:
    return images


class _Layout:
    """The scratch model's memory layout: its own for steps, ``channels_last`` for scoring.

    On the CPU, oneDNN runs convolutions, BatchNorm and pooling on ``channels_last`` tensors
    faster than on the default layout (no-grad passes of 128 images on 2 cores: small CNNs
    1.7-2.5x, ResNet-18 1.15x). The passes that score candidates (validation probe,
    recalibration, difficulty and diversity draws: several hundred images per candidate) are
    most of what a generation costs beyond its look-ahead steps, so they run ``channels_last``;
    the look-ahead steps keep the model's own layout, so they train as the model trains. The
    switch reassigns the data of the scratch's 4-d parameters and buffers that are in another
    layout (those already ``channels_last`` are left alone); the live model is never touched.
    Values differ from a default-layout pass by float rounding only (~1e-7).
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        tensors = [*model.parameters(), *model.buffers()]
        self._tensors = (
            [t for t in tensors if t.ndim == 4 and not t.is_contiguous(memory_format=_CL)]
            if device.type == "cpu"
            else []
        )
        self.scoring = False

    def for_scoring(self) -> None:
        """Put the 4-d weights in ``channels_last`` (no-op when inactive or already there)."""
        self._switch(True)

    @contextmanager
    def training(self) -> Iterator[None]:
        """The model's own layout inside (look-ahead steps), ``channels_last`` again after."""
        self._switch(False)
        try:
            yield
        finally:
            self._switch(True)

    def disable(self) -> None:
        """Keep the model's own layout from now on (a model whose forward needs it)."""
        self._switch(False)
        self._tensors = []

    @property
    def active(self) -> bool:
        """Whether the scoring passes run in ``channels_last`` now."""
        return self.scoring and bool(self._tensors)

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` in the layout of the current passes."""
        if self.active and images.ndim == 4:
            return images.contiguous(memory_format=_CL)
        return images

    def _switch(self, scoring: bool) -> None:
        if scoring == self.scoring:
            return
        layout = _CL if scoring else torch.contiguous_format
        with torch.no_grad():
            for t in self._tensors:
                t.data = t.data.contiguous(memory_format=layout)
        self.scoring = scoring


_CL = torch.channels_last


def _predict(outputs: torch.Tensor) -> torch.Tensor:
    """Class predictions: argmax of logits ``[N, C]``, or ``logit > 0`` for ``[N]``/``[N, 1]``."""
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        return (outputs.reshape(-1) > 0).long()
    return outputs.argmax(dim=1)


class _Call:
    """State shared by all candidates of one ``evaluate()`` call."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        optimizer: OptimizerSpec,
        train: Probe,
        val: Probe,
        seed: int,
        *,
        steps: int,
        batch_size: int,
        recalibrate: int | None,
        feature_layer: str | None,
        normalize: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        self.device = model_device(model)
        self.chunk = eval_chunk(self.device)
        self.recalibration_chunk = recalibration_chunk(self.device)
        self.scratch = scratch_copy(model)
        self.layout = _Layout(self.scratch, self.device)
        self.layout.for_scoring()
        self.theta = model.state_dict()  # references: the live model is never written
        self.holds_theta = True
        self.owner: _Context | None = None  # the candidate whose θ' the scratch holds, if any
        modes = capture_modes(model)
        self.train_modes = modes if model.training else [True] * len(modes)
        self.loss_fn, self.optimizer, self.seed = loss_fn, optimizer, seed
        self.normalize = normalize or _identity
        self.train, self.val = train.to(self.device), val.to(self.device)
        self.steps, self.recalibrate = steps, recalibrate
        self.feature_layer = feature_module_name(self.scratch, feature_layer)
        self.cache: dict[str, Any] = {}
        cpu = torch.Generator().manual_seed(derive_seed(seed, "subset"))
        self.subset_order = torch.randperm(len(train), generator=cpu).to(self.device)
        cpu.manual_seed(derive_seed(seed, "minibatches"))
        n, need = len(train), steps * batch_size
        perms = [torch.randperm(n, generator=cpu) for _ in range(-(-need // n))]
        order = torch.cat(perms) if perms else torch.empty(0, dtype=torch.int64)
        self.order = order[:need].view(steps, batch_size).to(self.device)

    def forward(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model(self.layout.images(self.normalize(images)))
        return out

    def check_forward(self) -> torch.Tensor:
        """θ's outputs on one validation image: the model runs on these probes.

        A model whose forward cannot run in ``channels_last`` (``x.view(...)`` on a feature
        map, say) gets its own layout back for the whole call; a forward that fails in both
        raises.
        """
        images = self.val.images[:1]
        with torch.no_grad():
            try:
                return self.forward(self.load_theta().eval(), images)
            except Exception:
                if not self.layout.active:
                    raise
            self.layout.disable()
            return self.forward(self.load_theta().eval(), images)

    @torch.no_grad()
    def outputs_and_features(self, model: nn.Module, images: torch.Tensor) -> Pass:
        """Outputs and features (input of the feature layer, or pixels) in chunks, no grad."""
        captured: list[torch.Tensor] = []

        def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
            captured.append(args[0].flatten(1))

        name = self.feature_layer
        handle = None if name is None else model.get_submodule(name).register_forward_pre_hook(hook)
        try:
            outputs = [self.forward(model, x) for x in torch.split(images, self.chunk)]
        finally:
            if handle is not None:
                handle.remove()
        features = images.flatten(1) if name is None else torch.cat(captured)
        return torch.cat(outputs), features

    def load_theta(self) -> nn.Module:
        if not self.holds_theta:
            self.scratch.load_state_dict(self.theta)
            self.holds_theta = True
        self.owner = None
        return self.scratch


class _Context:
    """The concrete :class:`evoaug.objectives.CandidateContext` of one candidate."""

    def __init__(self, call: _Call, policy: Policy) -> None:
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
