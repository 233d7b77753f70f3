"""The augmentation engine: genes compiled to tensors, applied per image to whole batches.

:func:`compile_policy` turns sub-policies of ``(op name, probability, level)`` genes into a
:class:`CompiledPolicy`; :func:`apply` augments a batch with it and a ``torch.Generator``. It is
what calling an :class:`evoaug.Policy` runs; it sits between the op catalog (:mod:`evoaug.ops`)
and the policies, and knows nothing of the latter.

All random numbers are drawn up front (:mod:`._draws`); then, per gene position, one of two
execution paths, which give the same pixels for the same draws (``uint8`` exactly, float up to
rounding; kernels that take a ``generator`` draw differently), chosen by ``apply``'s ``path``:

- **grouped**, the CPU's default: images are sorted by the op they drew, the affine ops' images
  are warped by one fused warp and every other op is called once on its images, in chunks that
  stay in cache. Only the drawn work is done, but the number of calls and their shapes follow
  the draws, with a host synchronization per position (:mod:`._plan`, :mod:`._execute`).
- **static**, the default on every other device (CUDA): every image goes through the same
  operations, one warp by a per-image matrix (the identity for non-affine ops) then every op
  the position can draw, computed for all images and selected per image with ``torch.where``.
  Every op is paid for every image, but the shapes depend on the policy alone: no host
  synchronization, a fixed sequence of kernels that a CUDA graph can capture and
  ``torch.compile`` can compile whole (:mod:`._static`).

Example:
    >>> import torch
    >>> from evoaug.augment import apply, compile_policy
    >>> compiled = compile_policy([[("Rotate", 0.8, 0.3), ("Invert", 0.5, 0.0)]])
    >>> images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    >>> apply(compiled, images, torch.Generator().manual_seed(0)).dtype
    torch.uint8
"""

from evoaug.augment._apply import EXECUTION_PATHS, ExecutionPath, apply, resolve_path
from evoaug.augment._compile import (
    MAGNITUDE_SAMPLINGS,
    CompiledPolicy,
    MagnitudeSampling,
    compile_policy,
)
from evoaug.augment._execute import CHUNK_ELEMENTS

__all__ = [
    "CHUNK_ELEMENTS",
    "EXECUTION_PATHS",
    "MAGNITUDE_SAMPLINGS",
    "CompiledPolicy",
    "ExecutionPath",
    "MagnitudeSampling",
    "apply",
    "compile_policy",
    "resolve_path",
]
