"""The plain-value format of :class:`~evoaug.EvoAugCallback`'s checkpoint state.

The callback produces and restores its state (``state_dict`` / ``load_state_dict``); this module
only defines the format, encodes it and validates what a checkpoint holds. Everything is an int,
a string, a list, a dict or a tensor, because Lightning loads checkpoints with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError

__all__ = ["STATE_VERSION", "CallbackState"]

STATE_VERSION = 1


@dataclass(frozen=True)
class CallbackState:
    """What a checkpoint keeps of the callback.

    Attributes:
        generation: Generations run so far.
        search: The search's own state (:meth:`evoaug.search.Search.state_dict`), or ``None``.
        active_policy: The policy training uses now, as :meth:`evoaug.Policy.to_dict` gives it.
        active_objectives: Its objectives.
        augmenter: The batch augmenter's generator states.
        history_lines: Records the history held at the checkpoint (later ones are dropped).
        epoch_done: The last epoch whose scheduled generations ran.
        trained_epoch: The last epoch whose training batches all ran.
        config_seed: The callback's ``seed``.
        datasets: ``mode="dataset"``: each wrapped dataset's main-process stream.
        resting: The challengers the guard refused lately (their genes as text) and the
            generations each still sits out.
        meter: The measured seconds the budget is spent against
            (:meth:`evoaug.callback._meter.SearchMeter.state_dict`).
        trial: The regularizer on trial, if any
            (:meth:`evoaug.callback._decide.Decider.trial_state`).
        rest: Generations in a row that changed nothing, and until when the search rests
            (:meth:`evoaug.callback._rest.SearchRest.state_dict`).

    Example:
        >>> state = CallbackState(generation=2, search=None, active_policy={},
        ...     active_objectives={}, augmenter={}, history_lines=8, epoch_done=1,
        ...     trained_epoch=1, config_seed=0)
        >>> CallbackState.from_dict(state.to_dict()) == state
        True
    """

    generation: int
    search: dict[str, Any] | None
    active_policy: dict[str, Any]
    active_objectives: dict[str, float]
    augmenter: dict[str, Any]
    history_lines: int
    epoch_done: int
    trained_epoch: int
    config_seed: int
    datasets: list[dict[str, Any]] = field(default_factory=list)
    resting: dict[str, int] = field(default_factory=dict)
    meter: dict[str, list[float]] = field(default_factory=dict)
    trial: dict[str, Any] = field(default_factory=dict)
    rest: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The state as a checkpoint stores it, with its format version."""
        return {"version": STATE_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> CallbackState:
        """Validate a checkpoint's state (older ones may lack the fields with defaults).

        Raises:
            ConfigError: Another format version, a missing key or a bad counter.
        """
        if state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"checkpoint has evoaug callback state version {state.get('version')!r}; "
                f"this evoaug reads version {STATE_VERSION}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        optional = ("datasets", "resting", "meter", "trial", "rest")
        missing = [name for name in names if name not in state and name not in optional]
        if missing:
            raise ConfigError(
                f"checkpoint's evoaug callback state is missing {missing}; it has "
                f"{sorted(map(str, state))}"
            )
        values = {name: state[name] for name in names if name in state}
        try:
            for name in ("generation", "history_lines", "config_seed"):
                check_int(name, values[name], low=0)
            for name in ("epoch_done", "trained_epoch"):
                check_int(name, values[name], low=-1)
        except ConfigError as err:
            raise ConfigError(f"checkpoint's evoaug callback state: {err}") from None
        return cls(**values)
