import collections

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import evoaug
from evoaug import Policy
from evoaug.pipeline import AugmentedDataset, BatchAugmenter, Normalize, PolicySlot

INVERT = Policy.from_genes([[("Invert", 1.0, 0.0)]])


def test_slot_round_trips_presets() -> None:
    slot = PolicySlot(Policy.preset("identity"))
    for name in ("trivialaugment", "autoaugment-imagenet", "randaugment"):
        policy = Policy.preset(name)
        slot.set(policy)
        restored = slot.get()
        assert restored.magnitude_sampling == policy.magnitude_sampling
        assert [s.ops for s in restored] == [s.ops for s in policy]
        for a, b in zip(restored, policy, strict=True):
            for ga, gb in zip(a, b, strict=True):
                assert ga.probability == pytest.approx(gb.probability)
                assert ga.level == pytest.approx(gb.level)


def test_slot_rejects_oversized_policies() -> None:
    slot = PolicySlot(Policy.preset("identity"), max_sub_policies=4)
    with pytest.raises(evoaug.ConfigError, match="exceeds the slot's capacity 4 x 4"):
        slot.set(Policy.preset("autoaugment-cifar10"))
    with pytest.raises(evoaug.ConfigError, match="`max_genes` must be a positive int"):
        PolicySlot(Policy.preset("identity"), max_genes=0)


def test_swap_reaches_persistent_workers() -> None:
    slot = PolicySlot(Policy.preset("identity"))
    data = [(torch.full((1, 4, 4), 0.25), i) for i in range(8)]
    loader = DataLoader(
        AugmentedDataset(data, slot), batch_size=4, num_workers=2, persistent_workers=True
    )
    first = torch.cat([x for x, _ in loader])
    slot.set(INVERT)
    second = torch.cat([x for x, _ in loader])
    assert torch.all(first == 0.25)
    assert torch.all(second == 0.75)


def test_workers_draw_different_streams() -> None:
    slot = PolicySlot(Policy.preset("trivialaugment"))
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    data = [(image, 0)] * 16
    loader = DataLoader(
        AugmentedDataset(data, slot, seed=3),
        batch_size=8,
        num_workers=2,
        generator=torch.Generator().manual_seed(1),
    )
    batches = [x for x, _ in loader]  # batch 0 from worker 0, batch 1 from worker 1
    assert not torch.equal(batches[0], batches[1])


def test_dict_and_namedtuple_samples() -> None:
    slot = PolicySlot(INVERT)
    ds = AugmentedDataset([{"img": torch.zeros(1, 2, 2), "y": 1}], slot, image_key="img")
    assert torch.all(ds[0]["img"] == 1.0) and ds[0]["y"] == 1
    Sample = collections.namedtuple("Sample", ["x", "y"])
    ds = AugmentedDataset([Sample(torch.zeros(1, 2, 2), 3)], slot)
    assert isinstance(ds[0], Sample) and torch.all(ds[0].x == 1.0)
    with pytest.raises(evoaug.InputError, match=r"sample has no key 'image'; keys: \['img', 'y'\]"):
        AugmentedDataset([{"img": torch.zeros(1, 2, 2), "y": 1}], slot)[0]
    with pytest.raises(evoaug.ConfigError, match="must be map-style"):
        AugmentedDataset(iter([]), slot)


def test_batch_augmenter_normalizes_after_augmenting() -> None:
    aug = BatchAugmenter(INVERT, normalize=Normalize((0.5,), (0.5,)))
    out = aug(torch.zeros(2, 1, 2, 2, dtype=torch.uint8))
    assert out.dtype == torch.float32 and torch.all(out == 1.0)  # inverted to 1, then (1-.5)/.5


def test_batch_augmenter_state_round_trip() -> None:
    aug = BatchAugmenter(Policy.preset("trivialaugment"), seed=5)
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    aug(x)
    state = aug.state_dict()
    expected = aug(x)
    other = BatchAugmenter(Policy.preset("trivialaugment"), seed=99)
    other.load_state_dict(state)
    assert torch.equal(other(x), expected)


def test_normalize_validation() -> None:
    with pytest.raises(evoaug.ConfigError, match="equal length"):
        Normalize((0.5, 0.5), (0.2,))
    with pytest.raises(evoaug.ConfigError, match="`std` must be positive"):
        Normalize((0.5,), (0.0,))
    with pytest.raises(evoaug.ConfigError, match="`mean` must hold numbers, got 'a' in"):
        Normalize(("a",), (1.0,))  # type: ignore[arg-type]
    with pytest.raises(evoaug.ConfigError, match="`mean` must hold numbers, got True"):
        Normalize((True,), (1.0,))
    # Tensors and arrays of one value per channel are fine.
    norm = Normalize(torch.tensor([0.5, 0.5, 0.5]), np.array([0.25, 0.25, 0.25]))  # type: ignore[arg-type]
    assert norm.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    assert norm.std.flatten().tolist() == [0.25, 0.25, 0.25]


def test_normalize_refuses_images_with_other_channels() -> None:
    rgb = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    with pytest.raises(
        evoaug.InputError, match=r"3 channel\(s\) of mean and std, the images \(4, 1, 8, 8\)"
    ):
        rgb(torch.rand(4, 1, 8, 8))
    assert Normalize((0.5,), (0.25,))(torch.rand(2, 3, 4, 4)).shape == (2, 3, 4, 4)  # one for all


def test_policy_slot_gives_back_the_exact_policy_in_another_process() -> None:
    import copy
    import pickle

    policy = Policy.from_genes([[("Rotate", 1.0, 0.3), ("Invert", 0.2, 0.0)]] * 3)
    slot = PolicySlot(policy)
    worker = pickle.loads(pickle.dumps(slot))  # as a worker unpickles it: no cached policy
    assert worker.get().sub_policies == policy.sub_policies  # levels not rounded to float32
    reader = copy.copy(slot)  # shares the memory, has its own cache
    reader._cache = None
    assert reader.get().sub_policies == policy.sub_policies


def test_policy_slot_readers_wait_while_a_policy_is_written() -> None:
    import copy
    import threading
    import time

    slot = PolicySlot(Policy.preset("identity"))
    reader = copy.copy(slot)
    reader._cache = None
    slot._tensor[0] += 1  # a writer has started: the counter is odd
    got: list[Policy] = []
    thread = threading.Thread(target=lambda: got.append(reader.get()), daemon=True)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive() and not got  # it does not read a half-written policy
    slot._tensor[0] += 1  # the write is done
    thread.join(timeout=5)
    assert got and got[0].sub_policies == Policy.preset("identity").sub_policies
