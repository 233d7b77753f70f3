"""The augmentation engine: genes compiled to tensors, applied per image to whole batches.

:func:`compile_policy` turns sub-policies of ``(op name, probability, level)`` genes into a
:class:`CompiledPolicy`; :func:`apply` augments a batch with it and a ``torch.Generator``. It is
what calling an :class:`evoaug.Policy` runs; it sits between the op catalog (:mod:`evoaug.ops`)
and the policies, and knows nothing of the latter.

Inside, one execution path, the grouped one: for each gene position, images are sorted by the
op they drew, the affine ops' images are warped by one fused warp and every other op is called
once on its images, in chunks that stay in cache on the CPU.

Example:
    >>> import torch
    >>> from evoaug.augment import apply, compile_policy
    >>> compiled = compile_policy([[("Rotate", 0.8, 0.3), ("Invert", 0.5, 0.0)]])
    >>> images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    >>> apply(compiled, images, torch.Generator().manual_seed(0)).dtype
    torch.uint8
"""

from evoaug.augment._apply import apply
from evoaug.augment._compile import (
    MAGNITUDE_SAMPLINGS,
    CompiledPolicy,
    MagnitudeSampling,
    compile_policy,
)
from evoaug.augment._execute import CHUNK_ELEMENTS

__all__ = [
    "CHUNK_ELEMENTS",
    "MAGNITUDE_SAMPLINGS",
    "CompiledPolicy",
    "MagnitudeSampling",
    "apply",
    "compile_policy",
]
