"""The Lightning glue: EvoAugCallback, schedules and their meter, batch layouts, DDP sharding.

Besides the callback, the pieces the offline search reuses are public here: drawing probes and
resolving fairness groups from dataloaders (:func:`draw_probes`, :func:`resolve_groups`,
:func:`collect_samples`, :func:`pick_loader`), the report's sample images
(:func:`write_samples`), and copying a LightningModule without its Trainer
(:func:`detached_trainer`).
"""

from evoaug.callback._batch import BatchLayout
from evoaug.callback._callback import EvoAugCallback
from evoaug.callback._distributed import SearchStateMismatchError
from evoaug.callback._lightning import detached_trainer
from evoaug.callback._meter import SearchMeter
from evoaug.callback._probes import (
    ProbeSet,
    collect_samples,
    draw_probes,
    pick_loader,
    resolve_groups,
)
from evoaug.callback._rest import SearchRest
from evoaug.callback._rundir import command_line, write_samples
from evoaug.callback._schedule import Schedule, plan_schedule
from evoaug.callback._settings import CallbackConfig

__all__ = [
    "BatchLayout",
    "CallbackConfig",
    "EvoAugCallback",
    "ProbeSet",
    "Schedule",
    "SearchMeter",
    "SearchRest",
    "SearchStateMismatchError",
    "collect_samples",
    "command_line",
    "detached_trainer",
    "draw_probes",
    "pick_loader",
    "plan_schedule",
    "resolve_groups",
    "write_samples",
]
