"""evoaug: evolutionary multi-objective data augmentation for PyTorch Lightning.

Example:
    >>> import evoaug, torch
    >>> policy = evoaug.Policy.preset("autoaugment-cifar10")
    >>> policy(torch.rand(4, 3, 32, 32), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 32, 32])
"""

from evoaug import data, evaluate, models, objectives, offline, ops, search
from evoaug._version import __version__
from evoaug.callback import EvoAugCallback
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe
from evoaug.exceptions import ConfigError, EvoAugError, InputError, OpError, UnknownOpError
from evoaug.genome import GenomeSpace
from evoaug.objectives import Objective, register_objective
from evoaug.offline import OfflineSearch
from evoaug.ops import OpSpec, available_ops, get_op, register_op
from evoaug.pipeline import AugmentedDataset, PolicySlot
from evoaug.policy import Gene, Policy, SubPolicy
from evoaug.search import Constraint, Knee, Search, Selection, Weights

__all__ = [
    "AugmentedDataset",
    "ConfigError",
    "Constraint",
    "Evaluator",
    "EvoAugCallback",
    "EvoAugError",
    "Gene",
    "GenomeSpace",
    "InputError",
    "Knee",
    "Objective",
    "OfflineSearch",
    "OpError",
    "OpSpec",
    "OptimizerSpec",
    "Policy",
    "PolicySlot",
    "Probe",
    "Search",
    "Selection",
    "SubPolicy",
    "UnknownOpError",
    "Weights",
    "__version__",
    "available_ops",
    "data",
    "evaluate",
    "get_op",
    "models",
    "objectives",
    "offline",
    "ops",
    "register_objective",
    "register_op",
    "search",
]
