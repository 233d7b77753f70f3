"""Where augmentation runs: a shared-memory policy slot, a dataset wrapper, a batch augmenter.

- :class:`PolicySlot` holds the active policy in a shared-memory tensor. DataLoader workers —
  persistent ones included — read it on every sample, so a policy swapped in the main process
  reaches them without restarting them.
- :class:`AugmentedDataset` applies the slot's policy per sample inside the workers ("dataset"
  mode). Each worker seeds its own generator from the loader's per-worker seed, so workers never
  repeat one another's stream.
- :class:`BatchAugmenter` applies a policy to a whole batch on its device ("batch" mode), then
  normalizes.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, get_worker_info

from evoaug.exceptions import ConfigError, InputError
from evoaug.ops import available_ops
from evoaug.policy import Gene, Interpolation, MagnitudeSampling, Policy, SubPolicy

__all__ = ["AugmentedDataset", "BatchAugmenter", "Normalize", "PolicySlot"]

# version, number of sub-policies, genes per sub-policy, magnitude sampling, interpolation
_HEADER = 5


class PolicySlot:
    """The active policy, stored in a shared-memory tensor that worker processes can read.

    The policy is stored as numbers (op index into a fixed op list, probability, level), so any
    policy up to ``max_sub_policies`` x ``max_genes`` fits. A version counter lets readers
    rebuild their :class:`~evoaug.Policy` only when it changed.

    Args:
        policy: The initial policy.
        max_sub_policies: Capacity in sub-policies (RandAugment(N=2) needs 196).
        max_genes: Capacity in genes per sub-policy.

    Example:
        >>> slot = PolicySlot(Policy.preset("identity"))
        >>> slot.set(Policy.preset("autoaugment-cifar10"))
        >>> slot.version, len(slot.get())
        (2, 25)

    """

    def __init__(self, policy: Policy, *, max_sub_policies: int = 256, max_genes: int = 4) -> None:
        for name, value in (("max_sub_policies", max_sub_policies), ("max_genes", max_genes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"`{name}` must be a positive int, got {value!r}")
        self.op_names: tuple[str, ...] = tuple(available_ops())
        self.max_sub_policies = max_sub_policies
        self.max_genes = max_genes
        self._tensor = torch.zeros(_HEADER + max_sub_policies * max_genes * 3, dtype=torch.float64)
        self._tensor.share_memory_()  # type: ignore[no-untyped-call]
        self._cache: tuple[int, Policy] | None = None
        self.set(policy)

    @property
    def version(self) -> int:
        """The number of :meth:`set` calls so far."""
        return int(self._tensor[0]) // 2

    def set(self, policy: Policy) -> None:
        """Store ``policy``; readers in every process see it from their next read.

        Raises:
            ConfigError: The policy exceeds the slot's capacity or uses an op registered after
                the slot was created.

        """
        if not isinstance(policy, Policy):
            raise ConfigError(f"`policy` must be an evoaug.Policy, got {type(policy).__name__}")
        if len(policy) > self.max_sub_policies or policy.max_genes > self.max_genes:
            raise ConfigError(
                f"policy of {len(policy)} sub-policies x {policy.max_genes} genes exceeds the "
                f"slot's capacity {self.max_sub_policies} x {self.max_genes}; create the slot "
                "with larger `max_sub_policies` / `max_genes`"
            )
        index = {name: i for i, name in enumerate(self.op_names)}
        missing = sorted(set(policy.ops) - set(index))
        if missing:
            raise ConfigError(f"ops {missing} were registered after the slot was created")
        body = torch.full((self.max_sub_policies, self.max_genes, 3), -1.0, dtype=torch.float64)
        for k, sub in enumerate(policy):
            for j, gene in enumerate(sub):
                body[k, j] = torch.tensor(
                    [index[gene.op], gene.probability, gene.level], dtype=torch.float64
                )  # (float64, as Gene keeps them: every process rebuilds the same policy)
        # A sequence lock: the counter is odd while the slot is written, and readers that see
        # it odd, or see it change while they copy, read again; none pairs parts of two
        # policies. (One writer: the process that owns the callback.)
        sequence = int(self._tensor[0])
        self._tensor[0] = sequence + 1
        self._tensor[_HEADER:] = body.flatten()
        self._tensor[1] = len(policy)
        self._tensor[2] = policy.max_genes
        self._tensor[3] = 1.0 if policy.magnitude_sampling == "uniform" else 0.0
        self._tensor[4] = 1.0 if policy.interpolation == "nearest" else 0.0
        self._tensor[0] = sequence + 2
        self._cache = (sequence + 2, policy)

    def get(self) -> Policy:
        """The stored policy, rebuilt only when it changed since the last call."""
        while True:
            sequence = int(self._tensor[0])
            if sequence % 2:  # being written
                time.sleep(0)
                continue
            if self._cache is not None and self._cache[0] == sequence:
                return self._cache[1]
            header = self._tensor[1:_HEADER].tolist()
            k, length = int(header[0]), int(header[1])
            body = self._tensor[_HEADER:].view(self.max_sub_policies, self.max_genes, 3)
            rows = body[:k, :length].tolist()
            if int(self._tensor[0]) == sequence:
                break
        subs = []
        for row in rows:
            genes = [
                Gene(self.op_names[int(op)], float(prob), float(level))
                for op, prob, level in row
                if op >= 0
            ]
            subs.append(SubPolicy(tuple(genes)))
        sampling: MagnitudeSampling = "uniform" if header[2] == 1.0 else "fixed"
        interpolation: Interpolation = "nearest" if header[3] == 1.0 else "bilinear"
        policy = Policy(tuple(subs), magnitude_sampling=sampling, interpolation=interpolation)
        self._cache = (sequence, policy)
        return policy

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state


def _channel_values(name: str, values: object) -> list[float]:
    """One finite number per channel, from a sequence, a 1-D tensor or array; else ConfigError."""
    if isinstance(values, torch.Tensor):
        values = values.tolist() if values.ndim == 1 else values
    elif hasattr(values, "tolist") and getattr(values, "ndim", None) == 1:  # a numpy array
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(
            f"`{name}` must be a sequence of numbers, one per channel, got {values!r}"
        )
    out: list[float] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"`{name}` must hold numbers, got {value!r} in {list(values)}")
        if not math.isfinite(value):
            raise ConfigError(f"`{name}` must hold finite numbers, got {list(values)}")
        out.append(float(value))
    return out


class Normalize:
    """Per-channel ``(x - mean) / std``, applied after augmentation.

    Example:
        >>> Normalize((0.5,), (0.25,))(torch.ones(1, 1, 2, 2)).flatten().tolist()
        [2.0, 2.0, 2.0, 2.0]

    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        means, stds = _channel_values("mean", mean), _channel_values("std", std)
        if len(means) != len(stds) or not means:
            raise ConfigError(
                f"`mean` and `std` must be non-empty and of equal length, got {means} and {stds}"
            )
        if any(s <= 0 for s in stds):
            raise ConfigError(f"`std` must be positive, got {stds}")
        self.mean = torch.tensor(means, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(stds, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Normalize ``images`` ``[..., C, H, W]`` on their device.

        Raises:
            InputError: The images have another number of channels than ``mean`` (one value
                for every channel is allowed).
        """
        channels = self.mean.shape[0]
        if images.ndim < 3 or (channels != 1 and images.shape[-3] != channels):
            raise InputError(
                f"Normalize has {channels} channel(s) of mean and std, the images "
                f"{tuple(images.shape)}; give one value per channel of the data"
            )
        mean = self.mean.to(images.device, images.dtype)
        std = self.std.to(images.device, images.dtype)
        return (images - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


class BatchAugmenter:
    """Augment a batch of images on its device with a policy, then normalize ("batch" mode).

    Args:
        policy: The policy to apply; replace it with :meth:`set_policy`.
        normalize: Applied after augmentation (and to float conversion of ``uint8`` input).
        seed: Seed of the augmenter's own generator.

    Example:
        >>> aug = BatchAugmenter(Policy.preset("trivialaugment"), seed=0)
        >>> aug(torch.rand(4, 3, 8, 8)).shape
        torch.Size([4, 3, 8, 8])

    """

    def __init__(
        self,
        policy: Policy,
        *,
        normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        self.policy = policy
        self.normalize = normalize
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def set_policy(self, policy: Policy) -> None:
        """Use ``policy`` from the next call on."""
        self.policy = policy

    def generator(self, device: torch.device) -> torch.Generator:
        """The augmenter's generator on ``device`` (one stream per device type)."""
        key = str(device)
        if key not in self._generators:
            g = torch.Generator(device=device)
            g.manual_seed(self.seed)
            self._generators[key] = g
        return self._generators[key]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Augment ``images`` per sample, convert ``uint8`` to float, normalize."""
        out = self.policy(images, generator=self.generator(images.device))
        if out.dtype == torch.uint8:
            out = out.float() / 255.0
        return self.normalize(out) if self.normalize is not None else out

    def state_dict(self) -> dict[str, Any]:
        """Generator states, as plain values and tensors."""
        return {key: g.get_state() for key, g in self._generators.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore generator states saved by :meth:`state_dict`."""
        for key, value in state.items():
            self.generator(torch.device(key)).set_state(value)


class AugmentedDataset(Dataset[Any]):
    """Wrap a map-style dataset so that each sample's image is augmented in the worker.

    The policy comes from a :class:`PolicySlot` read on every sample. Samples may be tuples or
    lists (image at ``image_index``) or dicts (image under ``image_key``); images are tensors
    ``[C, H, W]``, float in ``[0, 1]`` or ``uint8``.

    Args:
        dataset: The dataset to wrap.
        slot: Where the active policy lives.
        seed: Base seed; each worker derives its own stream from it and the loader's seed.
        image_index: Position of the image in tuple samples.
        image_key: Key of the image in dict samples.

    Example:
        >>> data = [(torch.rand(1, 8, 8), 0) for _ in range(4)]
        >>> ds = AugmentedDataset(data, PolicySlot(Policy.preset("trivialaugment")))
        >>> ds[0][0].shape, len(ds)
        (torch.Size([1, 8, 8]), 4)

    """

    def __init__(
        self,
        dataset: Any,
        slot: PolicySlot,
        *,
        seed: int = 0,
        image_index: int = 0,
        image_key: str = "image",
    ) -> None:
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise ConfigError(
                "`dataset` must be map-style (with __getitem__ and __len__), got "
                f"{type(dataset).__name__}; use mode='batch' for iterable datasets"
            )
        if not isinstance(slot, PolicySlot):
            raise ConfigError(f"`slot` must be a PolicySlot, got {type(slot).__name__}")
        self.dataset = dataset
        self.slot = slot
        self.seed = seed
        self.image_index = image_index
        self.image_key = image_key
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def _worker_generator(self) -> torch.Generator:
        info = get_worker_info()
        owner = (-1, 0) if info is None else (info.id, info.seed)
        if self._generator is None or self._owner != owner:
            # DDP ranks seeded alike give their workers equal seeds: mix the rank in.
            rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
            base = self.seed if info is None else self.seed * 1_000_003 + info.seed
            g = torch.Generator()
            g.manual_seed((base * 7_919 + rank) % (2**63 - 1))
            self._generator, self._owner = g, owner
        return self._generator

    def __getitem__(self, index: int) -> Any:
        sample = self.dataset[index]
        policy = self.slot.get()
        generator = self._worker_generator()
        if isinstance(sample, dict):
            if self.image_key not in sample:
                raise InputError(
                    f"sample has no key {self.image_key!r}; keys: {sorted(sample)}; set `image_key`"
                )
            out = dict(sample)
            out[self.image_key] = policy(sample[self.image_key], generator=generator)
            return out
        if isinstance(sample, (tuple, list)):
            items = list(sample)
            items[self.image_index] = policy(items[self.image_index], generator=generator)
            if hasattr(sample, "_fields"):  # namedtuple
                return type(sample)(*items)
            return tuple(items) if isinstance(sample, tuple) else items
        if isinstance(sample, torch.Tensor):
            return policy(sample, generator=generator)
        raise InputError(
            f"cannot find the image in a sample of type {type(sample).__name__}; samples must "
            "be tensors, tuples/lists (image at `image_index`) or dicts (image at `image_key`)"
        )

    def state_dict(self) -> dict[str, Any]:
        """The main process's augmentation stream (``num_workers=0``), as a plain value.

        Workers' streams are not included: each worker seeds its own from the seed the
        DataLoader gives it.
        """
        main = self._generator is not None and self._owner == (-1, 0)
        return {"main": self._generator.get_state() if main and self._generator else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the main process's stream saved by :meth:`state_dict`."""
        saved = state.get("main")
        if saved is None:
            return
        generator = torch.Generator()
        generator.set_state(saved)
        self._generator, self._owner = generator, (-1, 0)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_generator"] = None
        state["_owner"] = None
        return state
