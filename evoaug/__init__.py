"""evoaug: evolutionary multi-objective data augmentation for PyTorch Lightning.

Example:
    >>> import evoaug, torch
    >>> policy = evoaug.Policy.preset("autoaugment-cifar10")
    >>> policy(torch.rand(4, 3, 32, 32), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 32, 32])

"""

from evoaug import ops
from evoaug.exceptions import ConfigError, EvoAugError, InputError, OpError, UnknownOpError
from evoaug.genome import GenomeSpace
from evoaug.ops import OpSpec, available_ops, get_op, register_op
from evoaug.policy import Gene, Policy, SubPolicy

__version__ = "0.1.0.dev0"

__all__ = [
    "ConfigError",
    "EvoAugError",
    "Gene",
    "GenomeSpace",
    "InputError",
    "OpError",
    "OpSpec",
    "Policy",
    "SubPolicy",
    "UnknownOpError",
    "__version__",
    "available_ops",
    "get_op",
    "ops",
    "register_op",
]
