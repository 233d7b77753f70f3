"""The training shuffle of evoaug's datamodules: a function of the seed and the epoch only.

A ``DataLoader(shuffle=True, generator=g)`` draws each epoch's order from ``g``, whose state is not
in Lightning checkpoints: a run resumed at epoch 5 would replay epoch 0's order. Seeding each
epoch's permutation from ``(seed, epoch)`` instead makes a resumed run see exactly the batches an
uninterrupted one sees. Lightning calls :meth:`EpochShuffleSampler.set_epoch` before every
training epoch (under DDP too: its sampler wrapper forwards the call).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from evoaug.data._checks import check_int

__all__ = ["EpochShuffleSampler"]

_SEED_MIX = 1_000_003


class EpochShuffleSampler(Sampler[int]):
    """Indices ``0..n-1`` in an order drawn from ``(seed, epoch)``.

    Without :meth:`set_epoch` calls (a loop outside Lightning) every pass advances the epoch, so
    passes still differ.

    Args:
        n: Dataset size.
        seed: Seed of the shuffle.

    Example:
        >>> sampler = EpochShuffleSampler(5, seed=0)
        >>> first, second = list(sampler), list(sampler)
        >>> sampler.set_epoch(0)
        >>> list(sampler) == first != second
        True

    """

    def __init__(self, n: int, seed: int) -> None:
        check_int("n", n, 0)
        check_int("seed", seed, 0)
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s order on the next pass."""
        check_int("epoch", epoch, 0)
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        seed = (self.seed * _SEED_MIX + self.epoch) % 2**63
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed)).tolist()
        self.epoch += 1
        return iter(order)

    def __len__(self) -> int:
        return self.n
