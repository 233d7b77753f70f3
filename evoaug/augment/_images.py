"""What the engine accepts: image checks at the boundary, and the way back to the input's form."""

from __future__ import annotations

from collections.abc import Callable

import torch

from evoaug.exceptions import InputError

__all__ = ["prepare"]


def prepare(images: object) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    """Validate images; return them as ``[B, C, H, W]`` and a function that undoes it.

    Float images come back as a private float32/float64 copy that the ops may modify in place;
    uint8 images come back as they are (never modified: the ops convert per chunk), and
    ``restore`` copies them if no op touched them.

    Raises:
        InputError: Not a tensor, wrong rank or channel count, empty sides, float values
            outside ``[0, 1]``, or a dtype other than float and uint8.

    """
    if not isinstance(images, torch.Tensor):
        raise InputError(
            "`images` must be a torch.Tensor [B, C, H, W] or [C, H, W], "
            f"got {type(images).__name__}"
        )
    if images.ndim not in (3, 4):
        raise InputError(
            f"`images` must have shape [B, C, H, W] or [C, H, W], got {tuple(images.shape)}"
        )
    squeeze = images.ndim == 3
    x = images.unsqueeze(0) if squeeze else images
    if x.shape[1] not in (1, 3):
        permute = "(2, 0, 1)" if squeeze else "(0, 3, 1, 2)"
        raise InputError(
            f"`images` must have 1 or 3 channels (dimension -3), got shape {tuple(images.shape)}; "
            f"channels-last arrays need `.permute{permute}`"
        )
    if x.shape[-1] == 0 or x.shape[-2] == 0:
        raise InputError(
            f"`images` must be at least 1x1 pixels (H, W), got shape {tuple(images.shape)}"
        )
    dtype = images.dtype
    private = dtype == torch.uint8  # uint8: not modified, no copy needed
    if dtype.is_floating_point:
        if x.numel():
            lo, hi = torch.stack(torch.aminmax(x)).tolist()  # one device sync
            if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
                raise InputError(
                    f"float `images` must be in [0, 1], got values in [{lo!r}, {hi!r}]; "
                    "augment before normalizing, or divide uint8 data by 255"
                )
        if dtype not in (torch.float32, torch.float64):
            x = x.float()
            private = True
    elif dtype != torch.uint8:
        raise InputError(f"`images` must be float in [0, 1] or uint8, got dtype {dtype}")

    def restore(out: torch.Tensor) -> torch.Tensor:
        if out.dtype != dtype:
            out = out.to(dtype)
        elif out.untyped_storage().data_ptr() == images.untyped_storage().data_ptr():
            out = out.clone()  # uint8 that no op touched: the output must not alias the input
        elif out.is_inference() and not images.is_inference():
            out = out.clone()  # computed without autograd: a tensor that training may save
        return out.squeeze(0) if squeeze else out

    return (x if private else x.clone()), restore
