"""Per-image evidence for comparing a few policies, paired: the same images, the same seeds.

:func:`gather_evidence` scores each policy, with common random numbers across policies, by
the two measures the callback's decision rule compares:

- the **alignment gains** of every training-probe image (gradient alignment of the policy's
  draw over the clean image's, balanced and worst-group; see ``_alignment``), and
- the **look-ahead correctness** of every validation-probe image after the policy's k-step
  look-ahead (BatchNorm recalibrated), once per repeat, each repeat with its own seed (minibatch
  order, augmentation draws, dropout masks), the same seeds for every policy.

Both are paired: image ``i`` of one policy's arrays is image ``i`` of the others', so the
decision rule can compare policies image by image (see :mod:`evoaug.search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from evoaug._probe import Probe
from evoaug.evaluate._call import Call, LossFn
from evoaug.evaluate._context import Context
from evoaug.evaluate._isolation import derive_seed, model_device, preserved_rng
from evoaug.evaluate._optim import OptimizerSpec
from evoaug.objectives import CandidateFailure
from evoaug.policy import Policy

if TYPE_CHECKING:
    from evoaug.evaluate._evaluator import Evaluator

__all__ = ["Evidence", "gather_evidence"]


@dataclass(frozen=True)
class Evidence:
    """One policy's per-image evidence (see the module docstring).

    Attributes:
        policy: The policy.
        alignment: ``[2, N]``: per training-probe image, the balanced and the worst-group
            alignment gain; ``None`` when not gathered or failed.
        coverage: ``[M]``: per validation-probe image, how much closer the policy's images
            bring the training probe to it (``Context.coverage_gains``); gathered with the
            alignment.
        worst_group: The group with the highest validation loss at θ (with the alignment).
        correct: ``[R, M]`` booleans: per look-ahead repeat, which validation-probe images θ'
            classifies correctly; ``None`` when not gathered or failed.
        groups: ``[M]`` fairness groups of the validation probe (``None`` without groups).
        failure: Why the policy could not be scored, or ``None``.
    """

    policy: Policy
    alignment: np.ndarray | None
    correct: np.ndarray | None
    groups: np.ndarray | None
    failure: str | None = None
    coverage: np.ndarray | None = None
    worst_group: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the policy was scored."""
        return self.failure is None


def _call(
    evaluator: Evaluator,
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: OptimizerSpec,
    train_probe: Probe,
    val_probe: Probe,
    seed: int,
) -> Call:
    recalibrate = evaluator.recalibration_size if evaluator.recalibrate_bn else None
    return Call(
        model,
        loss_fn,
        optimizer,
        train_probe,
        val_probe,
        seed,
        steps=evaluator.lookahead_steps,
        batch_size=evaluator.batch_size,
        recalibrate=recalibrate if evaluator.lookahead_steps else None,
        feature_layer=evaluator.feature_layer,
        normalize=evaluator.normalize,
    )


def gather_evidence(
    evaluator: Evaluator,
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: OptimizerSpec,
    train_probe: Probe,
    val_probe: Probe,
    policies: Sequence[Policy],
    *,
    seed: int,
    alignment: bool = True,
    lookahead_repeats: int = 0,
) -> list[Evidence]:
    """Paired per-image evidence for ``policies``; the live model is left untouched.

    Args:
        evaluator: Supplies the look-ahead settings (steps, batch size, recalibration,
            feature layer, normalization, alignment size).
        model: The live model (a scratch copy is used).
        loss_fn: ``loss_fn(outputs, labels) -> scalar mean loss``.
        optimizer: The look-ahead's optimizer.
        train_probe: Look-ahead minibatches and alignment images.
        val_probe: Validation images (its groups are the fairness groups).
        policies: The policies compared.
        seed: The seed of repeat 0 (later repeats derive theirs from it).
        alignment: Gather the alignment gains.
        lookahead_repeats: Look-aheads per policy (0: none).

    Returns:
        One :class:`Evidence` per policy, in order; a policy that raises or yields non-finite
        values has its ``failure`` set.

    Raises:
        ConfigError: ``alignment`` with a model whose outputs are not its last linear layer's.
    """
    alignments: list[np.ndarray | None] = [None] * len(policies)
    coverages: list[np.ndarray | None] = [None] * len(policies)
    worst: int | None = None
    corrects: list[list[np.ndarray]] = [[] for _ in policies]
    failures: list[str | None] = [None] * len(policies)
    groups = None if val_probe.groups is None else val_probe.groups.cpu().numpy()
    device = model_device(model)
    seeds = [seed] + [derive_seed(seed, f"repeat.{r}") for r in range(1, lookahead_repeats)]
    with preserved_rng(device), torch.enable_grad():
        for repeat, repeat_seed in enumerate(seeds or [seed]):
            call = _call(evaluator, model, loss_fn, optimizer, train_probe, val_probe, repeat_seed)
            call.check_forward()
            contexts = [Context(call, p) for p in policies]
            if alignment and repeat == 0 and contexts:
                worst = contexts[0].validation_gradients().worst_group  # or fail here, once
            for i, ctx in enumerate(contexts):
                if failures[i] is not None:
                    continue
                try:
                    if alignment and repeat == 0:
                        gains = ctx.alignment_gains(evaluator.alignment_size)
                        alignments[i] = torch.stack(gains).cpu().numpy()
                        coverages[i] = ctx.coverage_gains(evaluator.alignment_size).cpu().numpy()
                    if repeat < lookahead_repeats:
                        y_true, y_pred, _ = ctx.lookahead_predictions()
                        corrects[i].append(y_true == y_pred)
                except CandidateFailure as err:
                    failures[i] = str(err)
                except Exception as err:
                    failures[i] = f"{type(err).__name__}: {err}"
    return [
        Evidence(
            policy=policy,
            alignment=None if failure else alignments[i],
            correct=None if failure or not corrects[i] else np.stack(corrects[i]),
            groups=groups,
            failure=failure,
            coverage=None if failure else coverages[i],
            worst_group=worst,
        )
        for i, (policy, failure) in enumerate(zip(policies, failures, strict=True))
    ]
