"""Where batches meet the policy: augment training batches, normalize every batch.

Lightning hands each batch, once it is on the device, to ``on_after_batch_transfer`` of the
datamodule when the datamodule overrides that hook, else of the LightningModule. :class:`BatchHook`
wraps the hook of both objects, each wrapper calling the object's own hook first. The wrappers
carry ``__wrapped__``, which Lightning's ``is_overridden`` follows, so Lightning's choice of which
hook to call is what the user's code makes it, and exactly one wrapper runs per batch: no warning
is added, and a user's own hook keeps working. :meth:`BatchHook.remove` puts the hooks back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch

from evoaug.callback._batch import BatchLayout

__all__ = ["BatchHook"]

_HOOK = "on_after_batch_transfer"
Images = Callable[[torch.Tensor], torch.Tensor]


class BatchHook:
    """Augments training batches and normalizes validation, test and predict batches.

    Args:
        augment: Augments and normalizes training images (the callback's
            :class:`~evoaug.pipeline.BatchAugmenter`); ``None`` in ``mode="dataset"``, where the
            loader's workers augmented them already and training batches are only normalized.
        batch_keys: Where images, labels and groups sit in a batch (see
            :class:`~evoaug.callback.BatchLayout`).

    Attributes:
        normalize: Applied after augmentation, to every batch; set once the Trainer is known.
        layout: The training batches' layout, once one was seen.
    """

    def __init__(self, augment: Images | None, *, batch_keys: Mapping[str, int | str]) -> None:
        self.augment = augment
        self.batch_keys = dict(batch_keys)
        self.normalize: Images | None = None
        self.layout: BatchLayout | None = None
        self._wrapped: list[tuple[Any, Any]] = []

    @property
    def installed(self) -> bool:
        """Whether the hooks are wrapped now."""
        return bool(self._wrapped)

    def install(self, trainer: Any, module: Any) -> None:
        """Wrap ``on_after_batch_transfer`` of ``module`` and of the Trainer's datamodule."""
        if self._wrapped:
            return
        targets = [module]
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None:
            targets.append(datamodule)
        for target in targets:
            original = getattr(target, _HOOK)
            setattr(target, _HOOK, self._wrapper(trainer, original))
            self._wrapped.append((target, original))

    def _wrapper(self, trainer: Any, original: Any) -> Callable[[Any, int], Any]:
        @functools.wraps(original)
        def on_after_batch_transfer(batch: Any, dataloader_idx: int) -> Any:
            return self.transform(trainer, original(batch, dataloader_idx))

        return on_after_batch_transfer

    def remove(self) -> None:
        """Give every wrapped object its own hook back."""
        for target, original in reversed(self._wrapped):
            if getattr(type(target), _HOOK, None) is getattr(original, "__func__", None):
                delattr(target, _HOOK)  # back to the class's own method
            else:
                setattr(target, _HOOK, original)
        self._wrapped = []

    def layout_of(self, batch: Any) -> BatchLayout:
        """The layout of ``batch`` under this hook's ``batch_keys``."""
        return BatchLayout.infer(batch, self.batch_keys)

    def transform(self, trainer: Any, batch: Any) -> Any:
        """A training batch augmented (and normalized); any other batch normalized."""
        if not trainer.training or trainer.sanity_checking:
            return batch if self.normalize is None else self._normalize_batch(batch)
        layout = self.layout or self.layout_of(batch)
        self.layout = layout
        images, _, _ = layout.split(batch)
        augment = self.augment or self.normalized
        return layout.with_images(batch, augment(images))

    def _normalize_batch(self, batch: Any) -> Any:
        """A validation, test or predict batch with its images normalized.

        Such a batch may be images alone (predict), as a tensor or a one-element tuple or list;
        otherwise its own layout is read (it need not be the training batches').
        """
        if isinstance(batch, torch.Tensor):
            return self.normalized(batch)
        if isinstance(batch, (tuple, list)) and len(batch) == 1:
            (images,) = batch
            if isinstance(images, torch.Tensor):
                normalized = self.normalized(images)
                return (normalized,) if isinstance(batch, tuple) else [normalized]
        layout = self.layout_of(batch)
        images, _, _ = layout.split(batch)
        return layout.with_images(batch, self.normalized(images))

    def normalized(self, images: torch.Tensor) -> torch.Tensor:
        """Images as float (uint8 divided by 255), then normalized when ``normalize`` is set."""
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        return images if self.normalize is None else self.normalize(images)
