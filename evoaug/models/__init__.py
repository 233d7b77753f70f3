"""Reference networks and the ``Classifier`` LightningModule of evoaug's recipes.

Networks map images ``[B, C, H, W]`` to logits and end in an ``nn.Linear`` named ``fc``, whose
input is the feature vector of evoaug's diversity objective. Build them by name with
:func:`build_model` (names in :data:`MODELS`), or train them with :class:`Classifier`, which logs
per-group accuracy and writes ``test_predictions.csv`` and ``test_meta.json`` for the fairness
report (format: :mod:`evoaug.models._predictions`).

Example:
    >>> import torch
    >>> from evoaug.models import build_model
    >>> build_model("small-cnn", in_channels=3, num_classes=4)(torch.rand(1, 3, 32, 32)).shape
    torch.Size([1, 4])
"""

from evoaug.models._classifier import Classifier
from evoaug.models._group_metrics import GroupAccuracy
from evoaug.models._registry import MODELS, available_models, build_model
from evoaug.models._resnet import ResNet18
from evoaug.models._small_cnn import SmallCNN
from evoaug.models._wide_resnet import WideResNet

__all__ = [
    "MODELS",
    "Classifier",
    "GroupAccuracy",
    "ResNet18",
    "SmallCNN",
    "WideResNet",
    "available_models",
    "build_model",
]
