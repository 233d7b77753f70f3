"""A policy as a torchvision transform: :class:`PolicyTransform`.

The module owns its random stream, never torch's global one. A ``torch.Generator`` is created
lazily in each process that uses the module and again in each DataLoader worker, seeded from the
module's ``seed`` and the worker's seed, so workers never repeat each other's augmentations and
each epoch's new workers draw new ones.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, overload

import torch
from PIL import Image
from torch.utils.data import get_worker_info
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from evoaug.exceptions import ConfigError, InputError
from evoaug.ops import fresh_generator
from evoaug.policy._genes import PolicyLike

__all__ = ["PolicyTransform"]

_PIL_MODES = ("L", "RGB")


def _mix_seed(*parts: int | None) -> int:
    """A 63-bit seed that depends on every part, the same in every process."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class PolicyTransform(torch.nn.Module):
    """Apply a :class:`~evoaug.Policy` inside a torchvision pipeline.

    Accepts one image ``[C, H, W]``, a batch ``[B, C, H, W]`` (``uint8``, or float in ``[0, 1]``;
    every image of a batch draws its own sub-policy) or a PIL image in mode ``"L"`` or ``"RGB"``,
    and returns the same kind: a tensor of the same shape and dtype, or a PIL image, so the module
    can sit before ``ToTensor`` in a classic pipeline. It augments images only: in a v2 pipeline
    with masks or boxes, put it where only the image passes.

    Randomness comes from a generator the module owns, created on first use in each process:

    * in the main process, seeded with ``seed`` (the same outputs as
      ``policy(images, generator=torch.Generator().manual_seed(seed))``), or from the operating
      system when ``seed`` is ``None``;
    * in each DataLoader worker, seeded from ``(seed, worker_info.seed)``; torch gives every worker
      of every epoch its own ``worker_info.seed``, so workers never share a stream. Runs repeat
      exactly when the loader's base seed does (``torch.manual_seed`` before iterating, or
      ``DataLoader(generator=...)``).

    Pickled or copied modules leave the generator behind and start a fresh stream.

    Args:
        policy: The policy to apply.
        seed: Seed of the module's random stream; ``None`` draws one from the operating system
            (in workers, from the worker's seed).

    Raises:
        ConfigError: ``policy`` is not a :class:`~evoaug.Policy` (checked by what the module
            uses: sub-policies, sampling, name, interpolation and a call) or ``seed`` is not a
            non-negative integer.

    Example:
        >>> import torch
        >>> from evoaug import Policy
        >>> policy = Policy.preset("autoaugment-cifar10")
        >>> transform = policy.to_torchvision(seed=0)
        >>> transform
        PolicyTransform(policy='autoaugment-cifar10', sub_policies=25, seed=0)
        >>> image = torch.full((3, 32, 32), 128, dtype=torch.uint8)
        >>> out = transform(image)
        >>> out.shape, out.dtype
        (torch.Size([3, 32, 32]), torch.uint8)
        >>> bool(torch.equal(out, policy.to_torchvision(seed=0)(image)))
        True

    """

    def __init__(self, policy: PolicyLike, *, seed: int | None = None) -> None:
        super().__init__()
        if not isinstance(policy, PolicyLike):
            raise ConfigError(f"`policy` must be an evoaug.Policy, got {type(policy).__name__}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"`seed` must be a non-negative int or None, got {seed!r}")
        self.policy = policy
        self.seed = seed
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int | None, int | None] | None = None

    def _current_generator(self) -> torch.Generator:
        """The generator of this process (and DataLoader worker), created on first use."""
        info = get_worker_info()
        owner = (os.getpid(), info.id, info.seed) if info is not None else (os.getpid(), None, None)
        if self._generator is None or self._owner != owner:
            if info is not None:
                generator = torch.Generator().manual_seed(_mix_seed(self.seed, info.seed))
            elif self.seed is not None:
                generator = torch.Generator().manual_seed(self.seed)
            else:
                generator = fresh_generator("cpu")
            self._generator, self._owner = generator, owner
        return self._generator

    @overload
    def forward(self, images: torch.Tensor) -> torch.Tensor: ...

    @overload
    def forward(self, images: Image.Image) -> Image.Image: ...

    def forward(self, images: torch.Tensor | Image.Image) -> torch.Tensor | Image.Image:
        """Augment ``images``; see the class docstring for what is accepted.

        Returns:
            The augmented images, of the input's kind, shape and dtype.

        Raises:
            InputError: A PIL image in another mode than ``"L"`` or ``"RGB"``, or a tensor that
                :class:`~evoaug.Policy` rejects (wrong rank, channels, dtype or value range).

        """
        if isinstance(images, Image.Image):
            return self._forward_pil(images)
        out = self.policy(images, generator=self._current_generator())
        if isinstance(images, tv_tensors.TVTensor):  # keep a tv_tensors.Image an Image
            return tv_tensors.wrap(out, like=images)  # type: ignore[no-any-return]
        return out

    def _forward_pil(self, image: Image.Image) -> Image.Image:
        if image.mode not in _PIL_MODES:
            raise InputError(
                f"PIL images must have mode 'L' or 'RGB', got {image.mode!r}; "
                "convert first, e.g. `image.convert('RGB')`"
            )
        out = self.policy(F.pil_to_tensor(image), generator=self._current_generator())
        return F.to_pil_image(out, mode=image.mode)  # type: ignore[no-any-return]

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()  # type: ignore[no-untyped-call]
        state["_generator"] = None
        state["_owner"] = None
        return state

    def extra_repr(self) -> str:
        """Policy name, sub-policy count, non-default sampling and interpolation, and seed."""
        parts = [f"policy={self.policy.name!r}", f"sub_policies={len(self.policy.sub_policies)}"]
        if self.policy.magnitude_sampling != "fixed":
            parts.append(f"magnitude_sampling={self.policy.magnitude_sampling!r}")
        if self.policy.interpolation != "bilinear":
            parts.append(f"interpolation={self.policy.interpolation!r}")
        parts.append(f"seed={self.seed!r}")
        return ", ".join(parts)
