"""When a search that keeps changing nothing runs its next budgeted generation.

The budget (:mod:`evoaug.callback._meter`) says how many generations the fit can pay for; it
does not say that they are worth running. In the quality suite (``docs/benchmarks.md``) the
generations that changed the policy came early, and on data where no op helps the search ran
five to seven generations that each refused every challenger: the cost of the budget for none
of its use. So after ``patience`` budgeted generations in a row that change nothing, the search
rests: the next generation waits 2 epochs, each further one that changes nothing doubles the
wait (4, 8, ...), and a rest runs one generation per epoch end. Any change of the policy that
trains (a generation's, or the regularizer's at an epoch end) ends the rest. What the budget
paid for at the epoch ends of a rest leaves it (:meth:`~evoaug.callback.SearchMeter.forgo`):
after a rest the search goes on at its pace, without catching up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from evoaug._checks import check_int
from evoaug.exceptions import ConfigError

__all__ = ["SearchRest"]


@dataclass
class SearchRest:
    """How many generations in a row changed nothing, and until when the search rests.

    Attributes:
        patience: Generations in a row that change nothing before the search rests; ``None``:
            it never rests.
        idle: Generations in a row that changed nothing, so far.
        until: The epoch from whose end generations run again (-1: not resting).

    Example:
        >>> rest = SearchRest(patience=2)
        >>> rest.record(epoch=1, changed=False), rest.record(epoch=2, changed=False)
        (None, 4)
        >>> rest.allows(epoch=3, count=2), rest.allows(epoch=4, count=2)
        (0, 1)
        >>> rest.record(epoch=4, changed=False)  # the wait doubles
        8
        >>> rest.record(epoch=8, changed=True), rest.allows(epoch=9, count=2)
        (None, 2)
    """

    patience: int | None
    idle: int = 0
    until: int = -1

    @property
    def resting(self) -> bool:
        """Whether the search rests (generations wait, one per epoch end)."""
        return self.patience is not None and self.idle >= self.patience

    def record(self, *, epoch: int, changed: bool) -> int | None:
        """A generation at ``epoch``'s end changed the policy that trains, or not.

        Returns:
            The epoch the search now rests until, when this generation starts or lengthens a
            rest; else ``None``.
        """
        if changed:
            self.idle, self.until = 0, -1
            return None
        self.idle += 1
        if self.patience is None or self.idle < self.patience:
            return None
        self.until = epoch + 2 ** (self.idle - self.patience + 1)
        return self.until

    def allows(self, *, epoch: int, count: int) -> int:
        """How many of the ``count`` generations the budget pays for at ``epoch``'s end run."""
        if not self.resting:
            return count
        return 0 if epoch < self.until else min(count, 1)

    def state_dict(self) -> dict[str, int]:
        """Plain values for the checkpoint."""
        return {"idle": self.idle, "until": self.until}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore :meth:`state_dict`'s output.

        Raises:
            ConfigError: A key is missing or a value is not an int in range.
        """
        try:
            idle = check_int("idle", state["idle"], low=0)
            until = check_int("until", state["until"], low=-1)
        except (KeyError, ConfigError) as err:
            raise ConfigError(
                f"checkpoint's evoaug rest state must hold ints 'idle' >= 0 and 'until' >= -1, "
                f"got {dict(state)!r} ({err})"
            ) from None
        self.idle, self.until = idle, until
