"""What all candidates of one ``evaluate()`` call share: :class:`Call`.

The scratch copy of the model and its layout, θ, the probes on the model's device, the
minibatch order, the cache of clean passes, and the no-grad forward passes in chunks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from evoaug._probe import Probe
from evoaug.evaluate._isolation import capture_modes, derive_seed, model_device, scratch_copy
from evoaug.evaluate._layout import Layout
from evoaug.evaluate._optim import OptimizerSpec
from evoaug.evaluate._validate import feature_module_name

__all__ = ["Call", "LossFn", "Pass", "eval_chunk", "recalibration_chunk"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Pass = tuple[torch.Tensor, torch.Tensor]


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


def _identity(images: torch.Tensor) -> torch.Tensor:
    return images


class Call:
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
        self.layout = Layout(self.scratch, self.device)
        self.layout.for_scoring()
        self.theta = model.state_dict()  # references: the live model is never written
        self.holds_theta = True
        self.owner: object | None = None  # the candidate whose θ' the scratch holds, if any
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
