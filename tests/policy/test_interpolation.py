"""A policy's ``interpolation``: applied by every warp, kept by files, slots, spaces and exports."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import evoaug
from evoaug import ConfigError, GenomeSpace, Policy
from evoaug.augment import _plan
from evoaug.pipeline import PolicySlot
from evoaug.search import Search

WARPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Zoom")


def _nearest(policy: Policy) -> Policy:
    return dataclasses.replace(policy, interpolation="nearest")


def _batch(b: int = 64, h: int = 24, w: int = 20, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)


def _five_by_two() -> Policy:
    space = GenomeSpace(n_subpolicies=5, n_genes=2, interpolation="nearest")
    return space.decode(space.random(np.random.default_rng(4)))


def test_one_gene_policies_on_uint8_give_the_bytes_of_their_float_copies() -> None:
    policy = Policy.preset("trivialaugment", interpolation="nearest")
    images = _batch()
    as_uint8 = policy(images, generator=torch.Generator().manual_seed(1))
    as_float = policy(images.float() / 255, generator=torch.Generator().manual_seed(1))
    assert torch.equal(as_uint8, (as_float * 255).round().to(torch.uint8))
    assert not torch.equal(as_uint8, images)


@pytest.mark.parametrize(
    "policy",
    [
        Policy.preset("trivialaugment", interpolation="nearest"),
        Policy.preset("autoaugment-cifar10", interpolation="nearest"),
        Policy.preset("randaugment", num_ops=2, magnitude=9, interpolation="nearest"),
        _five_by_two(),
    ],
    ids=["trivialaugment", "autoaugment-cifar10", "randaugment", "5x2"],
)
@pytest.mark.parametrize("size", [(24, 20), (7, 9)])
def test_uint8_warps_equal_the_float_path_rounded_per_gene(
    policy: Policy, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nearest warp runs on uint8 directly: the bytes of the warp in float, rounded."""
    images = _batch(h=size[0], w=size[1])
    fast = policy(images, generator=torch.Generator().manual_seed(1))
    # The same policy with the warp sent through the float chunks, as for bilinear.
    monkeypatch.setattr(
        _plan.Work,
        "native",
        property(lambda work: work.spec is not None and work.spec.uint8 is not None),
    )
    assert torch.equal(fast, policy(images, generator=torch.Generator().manual_seed(1)))
    assert not torch.equal(fast, images)


def test_nearest_warps_only_move_pixels() -> None:
    images = _batch()  # no zeros: a 0 can only come from outside the image
    policy = Policy.from_genes([[(op, 1.0, 0.7)] for op in WARPS], interpolation="nearest")
    out = policy(images, generator=torch.Generator().manual_seed(0))
    for before, after in zip(images, out, strict=True):
        assert set(after.unique().tolist()) <= set(before.unique().tolist()) | {0}
    bilinear = dataclasses.replace(policy, interpolation="bilinear")
    blended = bilinear(images, generator=torch.Generator().manual_seed(0))
    assert any(
        not set(a.unique().tolist()) <= set(b.unique().tolist()) | {0}
        for b, a in zip(images, blended, strict=True)
    )


def test_same_draws_as_bilinear_for_ops_that_do_not_warp() -> None:
    """Interpolation changes the warps' resampling only, not the random stream."""
    images = _batch()
    colour = Policy.from_genes([[("Solarize", 0.5, 0.3), ("Cutout", 0.7, 0.4)], [("Rotate", 1, 1)]])
    a = colour(images, generator=torch.Generator().manual_seed(2))
    b = _nearest(colour)(images, generator=torch.Generator().manual_seed(2))
    rotated = (a != images).flatten(1).any(1) & (b != a).flatten(1).any(1)
    untouched_by_rotate = ~rotated
    assert torch.equal(a[untouched_by_rotate], b[untouched_by_rotate])
    assert rotated.any()


def test_a_whole_batch_warped_by_one_op_is_not_modified_in_place() -> None:
    images = _batch(b=8)
    before = images.clone()
    out = Policy.from_genes([[("Rotate", 1.0, 0.5)]], interpolation="nearest")(images)
    assert torch.equal(images, before)
    assert out.data_ptr() != images.data_ptr()


@pytest.mark.parametrize(
    "build",
    [
        lambda: Policy.from_genes([[("Rotate", 1.0, 0.5)]], interpolation="bicubic"),
        lambda: Policy.preset("trivialaugment", interpolation="cubic"),
        lambda: GenomeSpace(interpolation="linear"),
        lambda: evoaug.EvoAugCallback(interpolation="area"),
    ],
    ids=["policy", "preset", "genome-space", "callback"],
)
def test_unknown_interpolation_is_a_config_error(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"`interpolation` must be one of .*bilinear.*nearest"):
        build()


def test_files_keep_nearest_and_omit_the_default(tmp_path: Path) -> None:
    policy = Policy.preset("autoaugment-svhn", interpolation="nearest")
    path = tmp_path / "p.yaml"
    policy.to_yaml(path)
    assert "interpolation: nearest" in path.read_text()
    assert Policy.from_yaml(path) == policy
    assert Policy.from_json(policy.to_json()).interpolation == "nearest"
    assert "interpolation" not in Policy.preset("autoaugment-svhn").to_yaml()


def test_files_with_an_unknown_interpolation_are_refused() -> None:
    data = Policy.preset("identity").to_dict()
    data["interpolation"] = "lanczos"
    with pytest.raises(ConfigError, match=r"`interpolation` must be one of .* got 'lanczos'"):
        Policy.from_json(json.dumps(data))


def test_presets_take_the_interpolation_and_keep_their_tables() -> None:
    for name in evoaug.policy.presets():
        bilinear, nearest = Policy.preset(name), Policy.preset(name, interpolation="nearest")
        assert nearest.interpolation == "nearest" and bilinear.interpolation == "bilinear"
        assert nearest.sub_policies == bilinear.sub_policies
        assert nearest.name == bilinear.name
        assert nearest.magnitude_sampling == bilinear.magnitude_sampling


def test_str_and_torchvision_repr_name_nearest() -> None:
    policy = Policy.preset("trivialaugment", interpolation="nearest")
    assert "interpolation='nearest'" in str(policy).splitlines()[0]
    assert "interpolation='nearest'" in repr(policy.to_torchvision(seed=0))
    assert "interpolation" not in repr(Policy.preset("trivialaugment").to_torchvision(seed=0))


def test_policy_slot_carries_the_interpolation() -> None:
    slot = PolicySlot(Policy.preset("identity"))
    assert slot.get().interpolation == "bilinear"
    slot.set(Policy.preset("autoaugment-cifar10", interpolation="nearest"))
    assert slot.get().interpolation == "nearest"
    slot.set(Policy.preset("autoaugment-cifar10"))
    assert slot.get().interpolation == "bilinear"


def test_genome_space_decodes_with_its_interpolation() -> None:
    space = GenomeSpace(n_subpolicies=2, n_genes=1, interpolation="nearest")
    assert space.decode(space.random(np.random.default_rng(0))).interpolation == "nearest"
    assert "interpolation='nearest'" in repr(space)


def test_search_state_refuses_another_interpolation() -> None:
    ops = ["Identity", "Rotate", "Invert"]

    def search(interpolation: str) -> Search:
        space = GenomeSpace(ops, n_subpolicies=2, n_genes=1, interpolation=interpolation)  # type: ignore[arg-type]
        return Search(space, ("a", "b"), population_size=4, seed=0)

    nearest = search("nearest")
    state = nearest.state_dict()
    assert state["space"]["interpolation"] == "nearest"
    assert "interpolation" not in search("bilinear").state_dict()["space"]
    search("nearest").load_state_dict(state)
    with pytest.raises(ConfigError, match="`space` was .*nearest"):
        search("bilinear").load_state_dict(state)


def test_albumentations_export_uses_the_interpolation() -> None:
    pytest.importorskip("albumentations")
    for interpolation, flag in (("bilinear", 1), ("nearest", 0)):  # cv2.INTER_LINEAR, NEAREST
        policy = Policy.from_genes(
            [[("Rotate", 1.0, 0.4)], [("ShearX", 1.0, 0.4)]], interpolation=interpolation
        )
        compose = policy.to_albumentations()
        # OneOf (sub-policies) > Sequential (genes) > OneOf (+m / -m) > Affine
        genes = [seq.transforms[0] for seq in compose.transforms[0].transforms]
        affines = [t for gene in genes for t in gene.transforms]
        assert len(affines) == 4
        assert {t.interpolation for t in affines} == {flag}
