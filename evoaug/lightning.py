"""The callback under the ``lightning`` package's name, for ``lightning.pytorch`` scripts.

:class:`evoaug.EvoAugCallback` itself subclasses both ``pytorch_lightning.Callback`` and, when
the ``lightning`` package is installed, ``lightning.pytorch.Callback``: it works in either
Trainer and in either LightningCLI. This module keeps ``evoaug.lightning.EvoAugCallback`` as an
alias of the same class, and says what to install when ``lightning`` is missing.

Example:
    >>> import evoaug
    >>> from evoaug.lightning import EvoAugCallback
    >>> EvoAugCallback is evoaug.EvoAugCallback
    True
"""

from __future__ import annotations

from evoaug.callback import EvoAugCallback
from evoaug.exceptions import EvoAugError

try:
    import lightning.pytorch  # noqa: F401 (only checks that it is installed)
except ImportError as err:  # pragma: no cover - depends on the environment
    raise EvoAugError(
        "evoaug.lightning needs the `lightning` package: pip install lightning "
        "(or use evoaug.EvoAugCallback with pytorch_lightning)"
    ) from err

__all__ = ["EvoAugCallback"]
