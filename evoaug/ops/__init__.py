"""The op catalog: built-in per-sample kernels and the registry for custom ones.

Besides the ops, the building blocks that the augmentation engine (:mod:`evoaug.augment`) and
custom kernels share: the affine warps that fused affine ops go through, the bounded variants of
kernels that size their work from the data (:func:`bounded_kernel`), the registry's version
counter, and random draws from an explicit generator on any device.
"""

from evoaug.ops import _table
from evoaug.ops._geometric import INTERPOLATIONS, Interpolation, warp_affine, warp_nearest
from evoaug.ops._random import fresh_generator, randint, uniform
from evoaug.ops._registry import (
    OpFn,
    OpSpec,
    available_ops,
    get_op,
    register_op,
    registry_version,
    unregister_op,
)

BUILTIN_OPS = _table.BUILTIN_OPS
bounded_kernel = _table.bounded_kernel
is_builtin = _table.is_builtin

__all__ = [
    "BUILTIN_OPS",
    "INTERPOLATIONS",
    "Interpolation",
    "OpFn",
    "OpSpec",
    "available_ops",
    "bounded_kernel",
    "fresh_generator",
    "get_op",
    "is_builtin",
    "randint",
    "register_op",
    "registry_version",
    "unregister_op",
    "uniform",
    "warp_affine",
    "warp_nearest",
]
