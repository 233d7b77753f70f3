"""The callback for the ``lightning`` package's namespace (``lightning.pytorch.Trainer``).

``evoaug.EvoAugCallback`` subclasses ``pytorch_lightning.Callback``. Users of the unified
``lightning`` package import the same callback from here; it also subclasses
``lightning.pytorch.Callback``, which that Trainer requires.

Example:
    >>> from evoaug.lightning import EvoAugCallback  # doctest: +SKIP
    >>> trainer = lightning.pytorch.Trainer(callbacks=[EvoAugCallback()])  # doctest: +SKIP
"""

from __future__ import annotations

from evoaug.callback import EvoAugCallback as _EvoAugCallback
from evoaug.exceptions import EvoAugError

try:
    import lightning.pytorch as _lightning_pytorch
except ImportError as err:  # pragma: no cover - depends on the environment
    raise EvoAugError(
        "evoaug.lightning needs the `lightning` package: pip install lightning "
        "(or use evoaug.EvoAugCallback with pytorch_lightning)"
    ) from err

__all__ = ["EvoAugCallback"]


class EvoAugCallback(_EvoAugCallback, _lightning_pytorch.Callback):  # type: ignore[misc]
    """:class:`evoaug.EvoAugCallback` for ``lightning.pytorch.Trainer``; same arguments."""
