"""The Lightning glue: EvoAugCallback, schedules, batch layouts, DDP sharding."""

from evoaug.callback._batch import BatchLayout
from evoaug.callback._callback import EvoAugCallback
from evoaug.callback._distributed import SearchStateMismatchError
from evoaug.callback._schedule import Schedule, plan_schedule

__all__ = ["BatchLayout", "EvoAugCallback", "Schedule", "SearchStateMismatchError", "plan_schedule"]
