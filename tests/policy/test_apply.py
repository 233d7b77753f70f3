"""How a policy augments a batch: grouping by op, fused affine warps, chunks, uint8 images.

The engine is :mod:`evoaug.augment`; a policy compiles its genes for it once per device.

The reference below is the plain algorithm: for each gene position, each op in order of first
use is applied to the images that drew it and fired, one kernel call per op. The policy must
compute exactly the same floats, whatever it fuses or chunks.
"""

from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest
import torch

import evoaug
from evoaug import Policy
from evoaug.augment import _execute
from evoaug.ops import get_op
from evoaug.policy import _policy

AFFINE_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Zoom")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference(policy: Policy, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The unfused algorithm, on float images, drawing in the policy's documented order."""
    b = images.shape[0]
    subs = policy.sub_policies
    length = policy.max_genes
    choice = torch.randint(len(subs), (b,), generator=generator).tolist()
    draws = torch.rand((length, 3, b), generator=generator)
    out = images.clone()
    for j in range(length):
        genes = [subs[c].genes[j] if j < len(subs[c]) else None for c in choice]
        prob = torch.tensor([g.probability if g else 0.0 for g in genes], dtype=torch.float32)
        levels = torch.tensor([g.level if g else 0.0 for g in genes], dtype=torch.float32)
        if policy.magnitude_sampling == "uniform":
            levels = levels * draws[j, 1]
        signs = torch.where(draws[j, 2] < 0.5, -1.0, 1.0)
        fires = (draws[j, 0] < prob).tolist()
        for name in policy.ops:  # order of first use
            selected = [i for i, g in enumerate(genes) if g and g.op == name and fires[i]]
            if name == "Identity" or not selected:
                continue
            spec = get_op(name)
            index = torch.tensor(selected)
            mags = spec.magnitude(levels[index])
            if spec.signed:
                mags = mags * signs[index]
            out[index] = spec(out[index], mags, generator=generator)
    return out


def _five_by_two(seed: int) -> Policy:
    space = evoaug.GenomeSpace(n_subpolicies=5, n_genes=2)
    return space.decode(np.random.default_rng(seed).random(space.dim))


def _policies() -> dict[str, Policy]:
    return {
        "trivialaugment": Policy.preset("trivialaugment"),
        "randaugment": Policy.preset("randaugment", num_ops=3, magnitude=14),
        "autoaugment-cifar10": Policy.preset("autoaugment-cifar10"),
        "5x2": _five_by_two(3),
        "random ops": Policy.from_genes(
            [
                [("Cutout", 0.7, 0.5), ("GaussianNoise", 0.6, 0.5), ("Rotate", 0.5, 0.5)],
                [("Perspective", 0.8, 0.6), ("Rotate", 0.5, 0.3)],
                [("ShearX", 0.9, 0.4), ("Cutout", 0.5, 0.8), ("Zoom", 0.7, 0.2)],
                [("Zoom", 0.9, 0.7), ("Perspective", 0.4, 0.5)],
                [("GaussianNoise", 1.0, 0.3), ("Equalize", 0.5, 0.0), ("TranslateY", 0.6, 0.5)],
                [("Identity", 1.0, 0.0), ("ShearY", 0.6, 0.5), ("Cutout", 0.5, 0.8)],
            ],
            magnitude_sampling="uniform",
        ),
    }


@pytest.mark.parametrize("name", list(_policies()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_policy_equals_the_unfused_reference(name: str, dtype: torch.dtype) -> None:
    policy = _policies()[name]
    images = torch.rand(96, 3, 12, 12, generator=_gen(1), dtype=dtype)
    expected = _reference(policy, images, _gen(7))
    assert torch.equal(policy(images, generator=_gen(7)), expected)


@pytest.mark.parametrize("chunk_images", [1, 5, 1000])
@pytest.mark.parametrize("name", ["trivialaugment", "random ops"])
def test_chunks_do_not_change_the_result(
    name: str, chunk_images: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = _policies()[name]
    # 105 values per image: a noise draw for a few images differs from a draw for all of them.
    images = torch.rand(64, 3, 7, 5, generator=_gen(2))
    expected = _reference(policy, images, _gen(3))
    expected_u8 = policy((images * 255).round().to(torch.uint8), generator=_gen(3))
    monkeypatch.setattr(_execute, "CHUNK_ELEMENTS", chunk_images * images[0].numel())
    assert torch.equal(policy(images, generator=_gen(3)), expected)
    u8 = policy((images * 255).round().to(torch.uint8), generator=_gen(3))
    assert torch.equal(u8, expected_u8)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_affine_ops_equal_each_op_alone(dtype: torch.dtype) -> None:
    genes = [(op, 1.0, 0.3) for op in (*AFFINE_OPS, "Invert", "Posterize")]
    policy = Policy.from_genes([[gene] for gene in genes])
    images = torch.rand(256, 3, 10, 13, generator=_gen(4), dtype=dtype)
    out = policy(images, generator=_gen(5))
    level = torch.tensor([0.3])  # float32, as the policy computes magnitudes
    seen = set()
    for image, result in zip(images, out, strict=True):
        matches = [
            (op, sign)
            for op, _, _ in genes
            for sign in ((1.0, -1.0) if get_op(op).signed else (1.0,))
            if torch.equal(get_op(op)(image[None], get_op(op).magnitude(level) * sign)[0], result)
        ]
        assert matches, "no op gives this image"
        seen.add(matches[0])
    assert len(seen) == 2 * len(AFFINE_OPS) + 2


@pytest.mark.parametrize("name", ["trivialaugment", "every op"])
@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_equals_rounded_float_for_single_gene_policies(name: str, channels: int) -> None:
    policy = (
        Policy.preset("trivialaugment")
        if name == "trivialaugment"
        else Policy.from_genes([[(op, 0.8, 0.6)] for op in evoaug.available_ops()])
    )
    images = torch.randint(0, 256, (128, channels, 11, 9), dtype=torch.uint8, generator=_gen())
    out = policy(images, generator=_gen(1))
    as_float = policy(images.float() / 255, generator=_gen(1))
    assert out.dtype == torch.uint8
    assert torch.equal(out, (as_float * 255).round().to(torch.uint8))


def test_uint8_images_no_op_touches_come_back_byte_identical() -> None:
    policy = Policy.from_genes(
        [[("Identity", 1.0, 0.0)], [("Posterize", 0.5, 0.7)], [("Rotate", 0.5, 0.5)]]
    )
    images = torch.randint(0, 256, (200, 3, 8, 8), dtype=torch.uint8, generator=_gen())
    out = policy(images, generator=_gen(2))
    as_float = policy(images.float() / 255, generator=_gen(2))
    untouched = (as_float == images.float() / 255).flatten(1).all(1)
    assert untouched.sum() > 100  # Identity, and the genes that did not fire
    assert torch.equal(out[untouched], images[untouched])
    assert not torch.equal(out[~untouched], images[~untouched])


def test_uint8_images_are_rounded_after_each_gene() -> None:
    solarize, blur = ("Solarize", 1.0, 0.5), ("GaussianBlur", 1.0, 0.4)
    policy = Policy.from_genes([[solarize, blur]])
    images = torch.randint(0, 256, (16, 3, 9, 9), dtype=torch.uint8, generator=_gen())

    def rounded(gene: tuple[str, float, float], u8: torch.Tensor) -> torch.Tensor:
        out = Policy.from_genes([[gene]])(u8.float() / 255, generator=_gen())
        return (out * 255).round().to(torch.uint8)

    assert torch.equal(policy(images, generator=_gen()), rounded(blur, rounded(solarize, images)))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
@pytest.mark.parametrize("probability", [0.0, 0.5, 1.0])
def test_input_is_neither_modified_nor_returned(dtype: torch.dtype, probability: float) -> None:
    images = torch.rand(32, 3, 8, 8, generator=_gen())
    images = (images * 255).to(dtype) if dtype == torch.uint8 else images.to(dtype)
    before = images.clone()
    # One op on every image (p=1) is applied without sorting: its copy must be private too.
    policy = Policy.from_genes([[("Invert", probability, 0.0), ("Rotate", probability, 0.4)]])
    out = policy(images, generator=_gen())
    assert torch.equal(images, before)
    assert out.untyped_storage().data_ptr() != images.untyped_storage().data_ptr()
    assert torch.equal(out, images) == (probability == 0.0)


def test_a_policy_that_has_run_pickles_as_plain_data() -> None:
    evoaug.register_op("TestLambdaDarken")(lambda images, mags: images * 0.5)
    try:
        policy = Policy.from_genes([[("TestLambdaDarken", 1.0, 0.0)], [("Rotate", 1.0, 0.5)]])
        images = torch.rand(8, 3, 6, 6, generator=_gen())
        out = policy(images, generator=_gen())  # compiles: the compiled genes hold the lambda
        assert set(vars(policy)) == {"sub_policies", "magnitude_sampling", "name", "interpolation"}
        copy = pickle.loads(pickle.dumps(policy))
        assert copy == policy
        assert torch.equal(copy(images, generator=_gen()), out)
    finally:
        evoaug.ops.unregister_op("TestLambdaDarken")


def test_replacing_an_op_recompiles_the_policies_that_use_it() -> None:
    evoaug.register_op("TestReplacedDarken")(lambda images, mags: images * 0.5)
    try:
        policy = Policy.from_genes([[("TestReplacedDarken", 1.0, 0.0)]])
        images = torch.ones(2, 1, 3, 3)
        assert torch.equal(policy(images), images * 0.5)
        evoaug.register_op("TestReplacedDarken", replace=True)(lambda images, mags: images * 0.25)
        assert torch.equal(policy(images), images * 0.25)
    finally:
        evoaug.ops.unregister_op("TestReplacedDarken")


def test_compiled_genes_are_cached_per_policy_and_dropped_with_it() -> None:
    policy = Policy.from_genes([[("Rotate", 1.0, 0.5)], [("Invert", 0.5, 0.0)]])
    key = id(policy)
    policy(torch.rand(4, 3, 8, 8), generator=_gen())
    version, by_device = _policy._COMPILED[key]
    assert version == evoaug.ops.registry_version()
    compiled = by_device[torch.device("cpu")]
    policy(torch.rand(4, 3, 8, 8), generator=_gen(1))
    assert _policy._COMPILED[key][1][torch.device("cpu")] is compiled  # not compiled again
    del policy, by_device
    gc.collect()
    assert key not in _policy._COMPILED


def test_uint8_rounding_is_half_to_even_and_clamped() -> None:
    scaled = torch.cat([torch.arange(-2.0, 258.0, 0.5), torch.rand(1000, generator=_gen()) * 255])
    out = _execute.from_float(scaled / 255.0, torch.uint8)
    assert out.dtype == torch.uint8
    assert torch.equal(out, (scaled / 255.0 * 255.0).round().clamp(0, 255).to(torch.uint8))
    assert out[torch.nonzero(scaled == 2.5)].item() == 2  # half to even
    assert out[torch.nonzero(scaled == 3.5)].item() == 4
    assert out[0].item() == 0 and out[torch.nonzero(scaled == 257.5)].item() == 255
    doubles = _execute.from_float(scaled.double() / 255.0, torch.uint8)  # the int16 route
    assert torch.equal(doubles, out)
