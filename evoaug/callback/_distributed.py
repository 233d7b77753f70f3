"""Sharding a generation across ranks and gathering the results.

Every rank holds the same search state and asks for the same candidates. Rank ``r`` of ``W``
scores candidates ``r, r + W, r + 2W, ...``; the results are all-gathered as Python objects and put
back in candidate order, so every rank tells pymoo the same values in the same order. Works for
any strategy built on ``torch.distributed`` (DDP on one or many nodes, gloo or NCCL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch.distributed as dist

from evoaug.exceptions import EvoAugError

__all__ = ["SearchStateMismatchError", "all_gather_objects", "merge_shards", "shard"]

T = TypeVar("T")


class SearchStateMismatchError(EvoAugError, RuntimeError):
    """The search state differs between ranks (it must be identical on all of them)."""


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(n: int, rank: int, world_size: int) -> list[int]:
    """Candidate indices scored by ``rank``: ``rank, rank + world_size, ...``.

    Example:
        >>> shard(5, 1, 2)
        [1, 3]
    """
    return list(range(rank, n, world_size))


def all_gather_objects(value: Any) -> list[Any]:
    """One picklable object from every rank, in rank order (just ``[value]`` without DDP)."""
    if not _distributed():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def merge_shards(n: int, shards: Sequence[Sequence[tuple[int, T]]]) -> list[T]:
    """Put ``(index, result)`` pairs from every rank back in candidate order.

    Raises:
        EvoAugError: A candidate was scored twice, not at all, or under an index outside
            ``range(n)`` (the ranks disagree on the generation).
    """
    out: dict[int, T] = {}
    for part in shards:
        for index, result in part:
            if not 0 <= index < n:
                raise EvoAugError(
                    f"a rank returned candidate {index} of a generation of {n}: the ranks "
                    "disagree on the generation"
                )
            if index in out:
                raise EvoAugError(f"candidate {index} was evaluated on more than one rank")
            out[index] = result
    missing = sorted(set(range(n)) - set(out))
    if missing:
        raise EvoAugError(f"candidates {missing} were evaluated on no rank")
    return [out[i] for i in range(n)]


def check_identical(checksum: str, what: str = "search state") -> None:
    """Raise unless every rank reports the same ``checksum``.

    Raises:
        SearchStateMismatchError: The ranks disagree.
    """
    sums = all_gather_objects(checksum)
    if len(set(sums)) > 1:
        detail = ", ".join(f"rank {r}: {s[:12]}" for r, s in enumerate(sums))
        raise SearchStateMismatchError(f"{what} differs between ranks ({detail})")
