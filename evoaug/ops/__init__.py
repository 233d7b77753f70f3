"""The op catalog: built-in per-sample kernels and the registry for custom ones."""

from evoaug.ops import _table
from evoaug.ops._geometric import INTERPOLATIONS, Interpolation
from evoaug.ops._registry import (
    OpFn,
    OpSpec,
    available_ops,
    get_op,
    register_op,
    unregister_op,
)

BUILTIN_OPS = _table.BUILTIN_OPS

__all__ = [
    "BUILTIN_OPS",
    "INTERPOLATIONS",
    "Interpolation",
    "OpFn",
    "OpSpec",
    "available_ops",
    "get_op",
    "register_op",
    "unregister_op",
]
