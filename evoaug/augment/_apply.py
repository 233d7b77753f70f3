"""The entry point: :func:`apply` augments a batch with a :class:`CompiledPolicy`.

All random numbers are drawn up front, in a fixed order, so that the stream does not depend on
what fires; each gene position then goes through the grouped path (:mod:`._plan` sorts its
images by op, :mod:`._execute` applies the ops). Another execution path would take a position's
``key`` and ``mags`` the same way.
"""

from __future__ import annotations

import torch

from evoaug.augment._compile import CompiledPolicy
from evoaug.augment._execute import run
from evoaug.augment._images import prepare
from evoaug.augment._plan import plan_position
from evoaug.exceptions import ConfigError
from evoaug.ops import fresh_generator, randint, uniform

__all__ = ["apply"]


def apply(
    compiled: CompiledPolicy, images: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Augment ``images`` ``[B, C, H, W]`` or ``[C, H, W]`` with ``compiled``, per image.

    Every image draws its own sub-policy uniformly, a coin flip per gene (fires with the
    gene's probability), a sign per gene for signed ops and, with
    ``magnitude_sampling="uniform"``, its own level in ``[0, level]``; the level maps to the
    op's magnitude with :meth:`evoaug.ops.OpSpec.magnitude`'s formula in float32. The ops
    compute in float: ``uint8`` images are converted to float ``/ 255`` only where an op
    touches them, and rounded to 8 bits after each gene position; ops with a ``uint8`` kernel
    (which gives the same bytes) skip the conversion; images no op touches come back
    byte-identical. This is what calling a :class:`~evoaug.Policy` does.

    Args:
        compiled: The genes, from :func:`compile_policy` (moved to the images' device here if
            they are elsewhere; :meth:`CompiledPolicy.to` does it once).
        images: Float images in ``[0, 1]`` or ``uint8`` images, 1 or 3 channels, any device.
            They are not modified.
        generator: Source of all randomness; ``None`` uses a fresh OS-seeded generator.

    Returns:
        The augmented images, same shape, dtype and device as ``images``: a new tensor (an
        empty batch comes back as it is).

    Raises:
        ConfigError: ``compiled`` is not a :class:`CompiledPolicy`.
        InputError: Not a tensor, wrong rank or channel count, or float values outside
            ``[0, 1]``.

    Example:
        >>> import torch
        >>> from evoaug.augment import apply, compile_policy
        >>> compiled = compile_policy([[("Invert", 0.5, 0.0)], [("Rotate", 1.0, 0.3)]])
        >>> images = torch.rand(8, 3, 32, 32)
        >>> out = apply(compiled, images, torch.Generator().manual_seed(0))
        >>> out.shape, out.dtype
        (torch.Size([8, 3, 32, 32]), torch.float32)
        >>> bool(torch.equal(out, apply(compiled, images, torch.Generator().manual_seed(0))))
        True

    """
    if not isinstance(compiled, CompiledPolicy):
        raise ConfigError(
            "`compiled` must be a CompiledPolicy (see compile_policy), "
            f"got {type(compiled).__name__}"
        )
    x, restore = prepare(images)
    if x.shape[0] == 0:
        return images
    if generator is None:
        generator = fresh_generator("cpu")
    return restore(_augment(compiled.to(x.device), x, generator))


def _augment(compiled: CompiledPolicy, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Augment ``x`` and return the result.

    Float ``x`` is a private float32/float64 copy, modified in place; uint8 ``x`` is left
    alone, and the result is new, or ``x`` itself when nothing fires.
    """
    b, device = x.shape[0], x.device
    k, length = compiled.rank.shape
    # All draws up front, in a fixed order, so the stream does not depend on what fires.
    choice = randint(k, (b,), generator, device)
    draws = uniform((length, 3, b), generator, device)
    rank = compiled.rank[choice]  # [B, L]
    prob, level = compiled.values[:, choice]  # [B, L] each
    out = x
    for j in range(length):
        fires = draws[j, 0] < prob[:, j]
        levels = level[:, j]
        if compiled.magnitude_sampling == "uniform":
            levels = levels * draws[j, 1]
        signs = torch.where(draws[j, 2] < 0.5, -1.0, 1.0)
        key = torch.where(fires, rank[:, j], -1)  # -1: not augmented at this position
        mags = _magnitudes(compiled.ranges, key, levels, signs)
        plan = plan_position(out, compiled, key, mags)
        if plan is not None:
            out = run(out, plan, generator)
    return out


def _magnitudes(
    ranges: torch.Tensor, key: torch.Tensor, levels: torch.Tensor, signs: torch.Tensor
) -> torch.Tensor:
    """Each image's magnitude for op ``key`` (rank, or -1) at ``levels``, with its sign.

    The arithmetic of :meth:`OpSpec.magnitude`, ``low + level * (high - low)`` in float32,
    vectorized over ops; signed ops multiply by ``signs`` (+-1).
    """
    low, span, signed = ranges[:, key]
    mags = low + levels * span
    return torch.where(signed > 0, mags * signs, mags)
