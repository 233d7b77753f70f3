"""Vectorized look-ahead: the k steps of many candidates as one batched model.

On a GPU a look-ahead step at probe batch sizes is bound by kernel launches, not arithmetic: a
step on 32 images costs about what a step on 512 costs. So the candidates' parameters and
buffers are stacked along a new leading dimension and every step runs once for all of them:

- one forward of the stacked images ``[G, batch, C, H, W]`` through
  ``torch.func.vmap(functional_call(model, ...))`` — each candidate's slice sees only its own
  parameters, images and BatchNorm statistics;
- one backward of the *sum* of the candidates' losses: candidates share nothing, so the gradient
  of the sum with respect to a candidate's slice is that candidate's own gradient (a NaN in one
  candidate stays in its slice);
- one optimizer of the caller's type over the stacked tensors: SGD, Adam, AdamW and RMSprop
  update every element independently, so one step on a stack is each candidate's own step.

Each candidate draws its augmentation from its own ``"lookahead"`` stream in the same calls as
when it runs alone, so it trains on the same images; the results agree with the one-by-one path
to float rounding (about 1e-7), not bit for bit. Dropout masks are shared across the candidates
of a step (``randomness="same"``), as common random numbers require.

Grouped convolutions, which is what a vmapped convolution becomes, are slower than separate
ones on the CPU, so :class:`~evoaug.evaluate.Evaluator` vectorizes by default on accelerators
only. A model or loss that ``vmap`` cannot run (data-dependent control flow, ``.item()``, in-place
writes to its input) falls back to the one-by-one path, once per call, with a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap

from evoaug.evaluate._call import Call
from evoaug.evaluate._context import NOT_SCALAR, Context
from evoaug.evaluate._isolation import derive_seed, restore_modes, seed_global_rng
from evoaug.exceptions import ConfigError

__all__ = ["VECTOR_IMAGES", "vectorized_lookahead"]

log = logging.getLogger(__name__)

VECTOR_IMAGES = 1024
"""Most images (candidates x look-ahead batch) in one vectorized step; larger generations run
in groups of ``VECTOR_IMAGES // batch_size`` candidates."""


def vectorized_lookahead(call: Call, contexts: Sequence[Context]) -> bool:
    """Run the look-ahead of every context in vectorized groups; store each result on it.

    A candidate whose augmentation fails gets that failure recorded (raised when an objective
    asks for its look-ahead); the others go on.

    Returns:
        Whether the vectorized path ran. ``False`` means ``vmap`` could not run the model or the
        loss, or ``loss_fn`` returned no scalar per candidate, or memory ran out (logged); every
        context is then reset and trains one by one, which reports such errors per candidate
        as it always does.

    """
    if not contexts or not call.steps:
        return False
    size = max(1, VECTOR_IMAGES // call.order.shape[1])
    for start in range(0, len(contexts), size):
        group = contexts[start : start + size]
        try:
            _run_group(call, group)
        except Exception as err:  # vmap cannot run this model or loss, or out of memory
            for ctx in contexts:
                ctx.reset_lookahead()
            log.warning(
                "vectorized look-ahead unavailable (%s: %s); candidates train one by one "
                "(a generation then costs about P times more on a GPU)",
                type(err).__name__,
                err,
            )
            if call.device.type == "cuda":
                torch.cuda.empty_cache()
            return False
    return True


class _Stack:
    """The stacked parameters and buffers of ``g`` copies of the scratch model's θ."""

    def __init__(self, model: nn.Module, g: int) -> None:
        def stack(t: torch.Tensor) -> torch.Tensor:
            return t.detach().unsqueeze(0).repeat(g, *([1] * t.ndim))

        self.params = {
            name: stack(p).requires_grad_(p.requires_grad) for name, p in model.named_parameters()
        }
        self.buffers = {name: stack(b) for name, b in model.named_buffers()}
        # State-dict keys, tied parameters included, mapped to the stacked tensors by identity.
        by_id = {id(p): self.params[n] for n, p in model.named_parameters()}
        by_id.update({id(b): self.buffers[n] for n, b in model.named_buffers()})
        self.keys = {
            key: by_id[id(value)]
            for key, value in model.state_dict(keep_vars=True).items()
            if id(value) in by_id
        }

    def trainable(self) -> list[torch.Tensor]:
        return [p for p in self.params.values() if p.requires_grad]

    def state(self, i: int) -> dict[str, torch.Tensor]:
        """Candidate ``i``'s state dict (views into the stack)."""
        return {key: stacked[i].detach() for key, stacked in self.keys.items()}


def _images(call: Call, group: Sequence[Context]) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """Per step, every candidate's augmented images; a failing candidate gets clean images.

    Each candidate's batches come from :meth:`Context.lookahead_batches` on its own generator,
    so it sees exactly what it would see training alone.
    """
    streams = [ctx.lookahead_batches(ctx.generator("lookahead")) for ctx in group]
    failed: set[int] = set()
    images = call.train.images
    first = 0
    while first < call.steps:
        chunks: list[tuple[torch.Tensor, ...] | None] = []
        for i, (ctx, stream) in enumerate(zip(group, streams, strict=True)):
            if i in failed:
                chunks.append(None)
                continue
            try:
                _, x_steps = next(stream)
            except Exception as err:  # raised again when an objective asks for the look-ahead
                ctx.fail_lookahead(err)
                failed.add(i)
                chunks.append(None)
                continue
            chunks.append(x_steps)
        n_steps = next((len(c) for c in chunks if c is not None), 0)
        if n_steps == 0:  # every candidate failed
            return
        for offset in range(n_steps):
            step = first + offset
            clean = images[call.order[step]]
            yield step, [clean if c is None else c[offset] for c in chunks]
        first += n_steps


def _run_group(call: Call, group: Sequence[Context]) -> None:
    with call.layout.training():
        _train_group(call, group)


def _train_group(call: Call, group: Sequence[Context]) -> None:
    model = call.scratch
    call.load_theta()
    restore_modes(model, call.train_modes)
    seed_global_rng(call.device, derive_seed(call.seed, "dropout"))
    stack = _Stack(model, len(group))
    optimizer = call.optimizer.build(stack.trainable())
    labels = call.train.labels

    def forward(
        params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        out: torch.Tensor = functional_call(model, (params, buffers), (call.normalize(x),))
        return out

    batched_forward = vmap(forward, randomness="same")
    batched_loss = vmap(call.loss_fn, in_dims=(0, None))
    losses = torch.empty(call.steps, len(group), device=call.device)
    try:
        for step, per_candidate in _images(call, group):
            x = torch.stack(per_candidate)
            loss = batched_loss(
                batched_forward(stack.params, stack.buffers, x), labels[call.order[step]]
            )
            if not isinstance(loss, torch.Tensor) or loss.shape != (len(group),):
                got = (
                    f"shape {tuple(loss.shape[1:])}"
                    if isinstance(loss, torch.Tensor)
                    else type(loss).__name__
                )
                raise ConfigError(NOT_SCALAR.format(got=got))
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss.sum())
            optimizer.step()
            losses[step] = loss.detach()
    finally:
        optimizer.zero_grad(set_to_none=True)
    for i, ctx in enumerate(group):
        if not ctx.lookahead_failed:
            ctx.set_lookahead_result(stack.state(i), losses[:, i])
