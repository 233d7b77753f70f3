"""Reading images, labels and groups out of the batches users' dataloaders yield.

Supported layouts: a sequence ``(images, labels)`` or ``(images, labels, groups)`` (positions
configurable), or a mapping with configurable keys (default ``"image"``, ``"label"``,
``"group"``). Images are ``[B, C, H, W]`` tensors, float in ``[0, 1]`` or ``uint8``.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import torch

from evoaug.exceptions import ConfigError, InputError

__all__ = ["DEFAULT_KEYS", "BatchLayout", "describe_batch"]

DEFAULT_KEYS: dict[str, str] = {"image": "image", "label": "label", "group": "group"}
_FIX = (
    "evoaug reads batches shaped (images, labels), (images, labels, groups) or dicts; pass "
    "`batch_keys={'image': ..., 'label': ..., 'group': ...}` to EvoAugCallback to name other "
    "keys or positions"
)


def describe_batch(batch: object) -> str:
    """A short description of a batch's structure, for error messages."""
    if isinstance(batch, torch.Tensor):
        return f"Tensor{tuple(batch.shape)}:{str(batch.dtype).removeprefix('torch.')}"
    if isinstance(batch, Mapping):
        inner = ", ".join(f"{k!r}: {describe_batch(v)}" for k, v in list(batch.items())[:6])
        return "{" + inner + "}"
    if isinstance(batch, (tuple, list)):
        inner = ", ".join(describe_batch(v) for v in batch[:6])
        return ("(" + inner + ")") if isinstance(batch, tuple) else ("[" + inner + "]")
    return type(batch).__name__


@dataclass(frozen=True)
class BatchLayout:
    """Where images, labels and groups sit in a batch.

    Args:
        image: Position (sequences) or key (mappings) of the images.
        label: Position or key of the labels.
        group: Position or key of the groups, or ``None`` when batches carry none.

    Example:
        >>> layout = BatchLayout.infer((torch.rand(2, 1, 4, 4), torch.tensor([0, 1])))
        >>> layout.group is None
        True
        >>> images, labels, groups = layout.split((torch.rand(2, 1, 4, 4), torch.tensor([0, 1])))
        >>> images.shape, labels.tolist(), groups
        (torch.Size([2, 1, 4, 4]), [0, 1], None)

    """

    image: int | str
    label: int | str
    group: int | str | None

    @classmethod
    def infer(cls, batch: object, keys: Mapping[str, int | str] | None = None) -> BatchLayout:
        """Find the layout of ``batch``, optionally with user-given keys or positions.

        Raises:
            ConfigError: ``keys`` names something other than image/label/group.
            InputError: The batch has no recognizable images and labels; the message shows the
                structure that was found and the options that fix it.

        """
        keys = dict(keys or {})
        unknown = sorted(set(keys) - set(DEFAULT_KEYS))
        if unknown:
            raise ConfigError(
                f"`batch_keys` accepts the keys {sorted(DEFAULT_KEYS)}, got unknown {unknown}"
            )
        if isinstance(batch, Mapping):
            names = {**DEFAULT_KEYS, **keys}
            for role in ("image", "label"):
                if names[role] not in batch:
                    raise InputError(
                        f"batch has no {role} under key {names[role]!r}; found "
                        f"{describe_batch(batch)}. {_FIX}"
                    )
            group = names["group"] if names["group"] in batch else None
            if "group" in keys and group is None:
                raise InputError(
                    f"batch has no groups under key {keys['group']!r}; found "
                    f"{describe_batch(batch)}"
                )
            layout = cls(names["image"], names["label"], group)
        elif isinstance(batch, (tuple, list)):
            positions = {"image": 0, "label": 1, "group": 2, **keys}
            for role in ("image", "label", "group"):
                if not isinstance(positions[role], int):
                    raise ConfigError(
                        f"`batch_keys[{role!r}]` must be an int position for sequence batches, "
                        f"got {positions[role]!r}"
                    )
            n = len(batch)
            if n < 2 or max(int(positions["image"]), int(positions["label"])) >= n:
                raise InputError(
                    f"cannot read images and labels from {describe_batch(batch)}. {_FIX}"
                )
            has_group = int(positions["group"]) < n
            if "group" in keys and not has_group:
                raise InputError(
                    f"batch has no groups at position {keys['group']!r}; found "
                    f"{describe_batch(batch)}"
                )
            layout = cls(
                int(positions["image"]),
                int(positions["label"]),
                int(positions["group"]) if has_group else None,
            )
        else:
            raise InputError(f"cannot read images and labels from {describe_batch(batch)}. {_FIX}")
        layout.split(batch)  # validates the parts
        return layout

    def _get(self, batch: Any, where: int | str) -> Any:
        return batch[where]

    def split(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Return ``(images, labels, groups or None)``, validated.

        Raises:
            InputError: Images are not a 4-D float or uint8 tensor, labels are not integers of
                the same length, or groups have another length.

        """
        images = self._get(batch, self.image)
        labels = self._get(batch, self.label)
        groups = None if self.group is None else self._get(batch, self.group)
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise InputError(
                f"images must be a tensor [B, C, H, W]; found {describe_batch(images)} in "
                f"{describe_batch(batch)}. {_FIX}"
            )
        if not (images.dtype == torch.uint8 or images.dtype.is_floating_point):
            raise InputError(f"images must be float in [0, 1] or uint8, got {images.dtype}")
        if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.is_floating_point():
            raise InputError(
                f"labels must be an integer tensor [B]; found {describe_batch(labels)} in "
                f"{describe_batch(batch)}. {_FIX}"
            )
        if labels.shape[0] != images.shape[0]:
            raise InputError(f"labels have {labels.shape[0]} entries for {images.shape[0]} images")
        if groups is not None and (
            not isinstance(groups, torch.Tensor) or groups.shape != labels.shape
        ):
            raise InputError(
                f"groups must be a tensor [B] like the labels; found {describe_batch(groups)}"
            )
        return images, labels, groups

    def with_images(self, batch: Any, images: torch.Tensor) -> Any:
        """The batch with its images replaced (a new tuple, or the same list/dict updated)."""
        if isinstance(batch, (MutableMapping, list)):
            batch[self.image] = images  # type: ignore[index]
            return batch
        if isinstance(batch, tuple):
            items = list(batch)
            items[int(self.image)] = images
            if hasattr(batch, "_fields"):
                return type(batch)(*items)
            return tuple(items)
        if isinstance(batch, Mapping):
            return {**batch, self.image: images}
        raise InputError(f"cannot replace images in {describe_batch(batch)}")
