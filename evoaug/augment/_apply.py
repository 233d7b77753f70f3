"""The entry point: :func:`apply` augments a batch with a :class:`CompiledPolicy`.

All random numbers are drawn up front, in a fixed order, so that the stream does not depend on
what fires (:mod:`._draws`); each gene position then goes through one of two execution paths,
which give the same pixels for the same draws (but for kernels that draw, see :mod:`._static`):

- **grouped** (the CPU's): :mod:`._plan` sorts the position's images by op and
  :mod:`._execute` calls each drawn op once on its images. It does only the work drawn, but the
  number of calls, and the shapes, follow the draws: one host synchronization per position to
  size the groups.
- **static** (every other device's): :mod:`._static` puts every image through the same
  operations, a warp by a per-image matrix then every op of the position selected per image,
  with no host synchronization and shapes that depend on the policy alone, so that a call is a
  fixed sequence of kernels (CUDA graphs, ``torch.compile``).
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Literal

import torch

from evoaug._checks import check_choice
from evoaug.augment._compile import CompiledPolicy
from evoaug.augment._draws import Draws, draw, positions
from evoaug.augment._execute import run
from evoaug.augment._images import prepare
from evoaug.augment._plan import plan_position
from evoaug.augment._static import run_static
from evoaug.exceptions import ConfigError
from evoaug.ops import fresh_generator

__all__ = ["EXECUTION_PATHS", "ExecutionPath", "apply", "resolve_path"]

ExecutionPath = Literal["auto", "grouped", "static"]
EXECUTION_PATHS: tuple[str, ...] = ("auto", "grouped", "static")


def apply(
    compiled: CompiledPolicy,
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    path: ExecutionPath = "auto",
) -> torch.Tensor:
    """Augment ``images`` ``[B, C, H, W]`` or ``[C, H, W]`` with ``compiled``, per image.

    Every image draws its own sub-policy uniformly, a coin flip per gene (fires with the
    gene's probability), a sign per gene for signed ops and, with
    ``magnitude_sampling="uniform"``, its own level in ``[0, level]``; the level maps to the
    op's magnitude with :meth:`evoaug.ops.OpSpec.magnitude`'s formula in float32. The ops
    compute in float: ``uint8`` images are converted to float ``/ 255`` and rounded to 8 bits
    after each gene position (the grouped path converts only the images an op touches, and
    ops with a ``uint8`` kernel, which gives the same bytes, skip the conversion); images no op
    touches come back byte-identical. This is what calling a :class:`~evoaug.Policy` does,
    with ``path="auto"``.

    Args:
        compiled: The genes, from :func:`compile_policy` (moved to the images' device here if
            they are elsewhere; :meth:`CompiledPolicy.to` does it once).
        images: Float images in ``[0, 1]`` or ``uint8`` images, 1 or 3 channels, any device.
            They are not modified.
        generator: Source of all randomness; ``None`` uses a fresh OS-seeded generator.
        path: The execution path (:mod:`evoaug.augment`), one of :data:`EXECUTION_PATHS`:
            ``"grouped"`` does only the work drawn, with one host synchronization per gene
            position; ``"static"`` computes every op a position can draw for every image,
            with shapes independent of the draws and no host synchronization (but the check
            of float images' range, here); ``"auto"`` takes the grouped path on the CPU and
            the static one elsewhere (:func:`resolve_path`). Both give the same pixels for
            ops without a ``generator``: ``uint8`` bytes exactly, float up to rounding
            (~1e-6); kernels that take a ``generator`` (Cutout, GaussianNoise, Perspective)
            draw differently.

    Returns:
        The augmented images, same shape, dtype and device as ``images``: a new tensor (an
        empty batch comes back as it is).

    Raises:
        ConfigError: ``compiled`` is not a :class:`CompiledPolicy`, or ``path`` is unknown.
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
        >>> static = apply(compiled, images, torch.Generator().manual_seed(0), path="static")
        >>> bool(torch.allclose(out, static, atol=1e-5))
        True

    """
    if not isinstance(compiled, CompiledPolicy):
        raise ConfigError(
            "`compiled` must be a CompiledPolicy (see compile_policy), "
            f"got {type(compiled).__name__}"
        )
    check_choice("path", path, EXECUTION_PATHS)
    x, restore = prepare(images)
    if x.shape[0] == 0:
        return images
    if generator is None:
        generator = fresh_generator("cpu")
    compiled = compiled.to(x.device)
    static = resolve_path(path, x.device) == "static"
    with _autograd_off(compiled, x):
        draws = draw(compiled, x.shape[0], generator, x.device)
        out = (run_static if static else _run_grouped)(compiled, x, draws, generator)
    return restore(out)


def _autograd_off(compiled: CompiledPolicy, x: torch.Tensor) -> AbstractContextManager[object]:
    """``torch.inference_mode`` for a policy of built-in ops on images that need no gradient.

    Without autograd's bookkeeping every op dispatches faster: at 32x32, where a call is about
    two hundred small ops, TrivialAugment on a uint8 batch of 256 takes about 10% less time on
    2 CPU cores. What leaves the call is an ordinary tensor, which training may save for
    backward (inference tensors refuse): the uint8 path makes its last gather outside inference
    mode, and ``restore`` copies any other result made inside it. Custom ops keep autograd:
    their kernels may need it.
    """
    if compiled.builtin and not x.requires_grad:
        return torch.inference_mode()
    return contextlib.nullcontext()


def _run_grouped(
    compiled: CompiledPolicy, x: torch.Tensor, draws: Draws, generator: torch.Generator
) -> torch.Tensor:
    """The grouped path: plan and run each gene position; ``None`` plans skip it.

    Float ``x`` is a private float32/float64 copy, modified in place; uint8 ``x`` is left
    alone, and the result is new, or ``x`` itself when nothing fires.
    """
    out = x
    for key, mags in positions(compiled, draws):
        plan = plan_position(out, compiled, key, mags)
        if plan is not None:
            out = run(out, plan, generator)
    return out


def resolve_path(path: ExecutionPath, device: torch.device) -> Literal["grouped", "static"]:
    """The execution path :func:`apply` takes for ``path`` on ``device``.

    ``"auto"`` is ``"grouped"`` on the CPU, where doing only the drawn work is fastest, and
    ``"static"`` on any other device, where a call is bound by kernel launches and host
    synchronizations rather than arithmetic.

    Example:
        >>> import torch
        >>> resolve_path("auto", torch.device("cpu")), resolve_path("auto", torch.device("cuda"))
        ('grouped', 'static')

    """
    if path == "auto":
        return "grouped" if device.type == "cpu" else "static"
    return path
