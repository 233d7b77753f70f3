"""The two execution paths give the same pixels for the same draws, and ``path`` picks one.

uint8 images must come back byte for byte equal, float images equal up to rounding. Kernels
that take a ``generator`` (Cutout, GaussianNoise, Perspective) draw for every image on the
static path and for the images that drew them on the grouped one: there, the images that did
not draw them must still agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch

import evoaug
from evoaug import ConfigError, Policy
from evoaug.augment import CompiledPolicy, apply, compile_policy, resolve_path
from evoaug.augment._draws import draw, positions
from evoaug.ops import BUILTIN_OPS, get_op, register_op, unregister_op, warp_affine

FLOAT_ATOL = 1e-5
RANDOM_OPS = [name for name in BUILTIN_OPS if get_op(name).takes_generator]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b: int, c: int, h: int, w: int, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    images = torch.rand(b, c, h, w, generator=_gen(seed))
    return (images * 255).round().to(torch.uint8) if dtype == torch.uint8 else images


def _both(compiled: CompiledPolicy, images: torch.Tensor, seed: int) -> list[torch.Tensor]:
    return [apply(compiled, images, _gen(seed), path=path) for path in ("grouped", "static")]


def _assert_same(grouped: torch.Tensor, static: torch.Tensor) -> None:
    assert static.dtype == grouped.dtype and static.shape == grouped.shape
    if grouped.dtype == torch.uint8:
        assert torch.equal(static, grouped)
    else:
        torch.testing.assert_close(static, grouped, atol=FLOAT_ATOL, rtol=0)


def _keys(compiled: CompiledPolicy, b: int, seed: int) -> Iterator[torch.Tensor]:
    """Each position's op ranks (-1: none) as :func:`apply` draws them with ``seed``."""
    for key, _ in positions(compiled, draw(compiled, b, _gen(seed), torch.device("cpu"))):
        yield key


def _never_drew(compiled: CompiledPolicy, b: int, seed: int, names: list[str]) -> torch.Tensor:
    """``[B]`` mask of the images that drew none of the ops ``names`` at any position."""
    ranks = [r for r, spec in enumerate(compiled.specs) if spec.name in names]
    clean = torch.ones(b, dtype=torch.bool)
    for key in _keys(compiled, b, seed):
        for r in ranks:
            clean &= key != r
    return clean


def _genes(policy: Policy) -> list[list[tuple[str, float, float]]]:
    return [[(g.op, g.probability, g.level) for g in sub] for sub in policy.sub_policies]


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("sampling", ["fixed", "uniform"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize("name", BUILTIN_OPS)
def test_paths_agree_on_every_op(
    name: str, dtype: torch.dtype, channels: int, sampling: str, interpolation: str
) -> None:
    genes = [[(name, 0.6, 0.9)], [("Identity", 1.0, 0.0)], [(name, 0.9, 0.4), ("Invert", 0.5, 0)]]
    compiled = compile_policy(
        genes,
        magnitude_sampling=sampling,  # type: ignore[arg-type]
        interpolation=interpolation,  # type: ignore[arg-type]
    )
    images = _images(32, channels, 17, 23, dtype)
    grouped, static = _both(compiled, images, seed=3)
    if name not in RANDOM_OPS:
        _assert_same(grouped, static)
        return
    # A kernel that draws does so for other images on each path: only the rest agree.
    clean = _never_drew(compiled, 32, 3, [name])
    assert 0 < int(clean.sum()) < 32
    _assert_same(grouped[clean], static[clean])
    assert static.dtype == dtype and (dtype == torch.uint8 or float(static.min()) >= 0)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
@pytest.mark.parametrize(
    "name", ["trivialaugment", "autoaugment-cifar10", "autoaugment-svhn", "randaugment"]
)
def test_paths_agree_on_published_policies(
    name: str, dtype: torch.dtype, interpolation: str
) -> None:
    policy = Policy.preset(name)
    compiled = compile_policy(
        _genes(policy),
        magnitude_sampling=policy.magnitude_sampling,
        interpolation=interpolation,  # type: ignore[arg-type]
    )
    for channels, seed in itertools.product((1, 3), (0, 1)):
        images = _images(64, channels, 19, 13, dtype, seed=seed)
        grouped, static = _both(compiled, images, seed)
        _assert_same(grouped, static)
        assert not torch.equal(static, images)


@pytest.mark.parametrize("sampling", ["fixed", "uniform"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8])
def test_paths_agree_on_a_policy_of_every_op(dtype: torch.dtype, sampling: str) -> None:
    """Every op, three genes per sub-policy: the images that no kernel drew for agree."""
    ops = list(BUILTIN_OPS)
    genes = [
        [(ops[i], 0.7, 0.8), (ops[(i + 7) % len(ops)], 0.6, 0.5), (ops[(i + 3) % len(ops)], 0.5, 1)]
        for i in range(len(ops))
    ]
    compiled = compile_policy(genes, magnitude_sampling=sampling)  # type: ignore[arg-type]
    images = _images(96, 3, 15, 21, torch.uint8 if dtype == torch.uint8 else torch.float32)
    images = images.to(dtype)
    grouped, static = _both(compiled, images, seed=4)
    clean = _never_drew(compiled, 96, 4, RANDOM_OPS)
    assert int(clean.sum()) > 16
    _assert_same(grouped[clean], static[clean])
    assert static.dtype == dtype


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_paths_agree_on_custom_ops(
    dtype: torch.dtype, interpolation: str, request: pytest.FixtureRequest
) -> None:
    """A custom op runs whole and masked; a custom affine op joins the one warp."""
    darken, shift = "TestPathsDarken", "TestPathsShift"
    request.addfinalizer(
        lambda: [unregister_op(n) for n in (darken, shift) if n in evoaug.available_ops()]
    )

    def shift_matrix(magnitudes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        matrices = torch.zeros(magnitudes.shape[0], 2, 3, dtype=magnitudes.dtype)
        matrices[:, 0, 0] = matrices[:, 1, 1] = 1.0
        matrices[:, 0, 2] = -magnitudes * width
        return matrices.to(magnitudes.device)

    @register_op(darken, low=0.0, high=0.5)
    def _darken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images * (1 - magnitudes.view(-1, 1, 1, 1).to(images.dtype))

    @register_op(shift, low=0.0, high=0.3, signed=True, affine=shift_matrix)
    def _shift(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        return warp_affine(images, shift_matrix(magnitudes.to(images.dtype), h, w))

    genes = [[(darken, 0.8, 0.7), (shift, 0.7, 0.9)], [(shift, 0.9, 0.5), ("Rotate", 0.5, 0.3)]]
    compiled = compile_policy(genes, interpolation=interpolation)  # type: ignore[arg-type]
    grouped, static = _both(compiled, _images(40, 3, 16, 11, dtype), seed=5)
    _assert_same(grouped, static)


def test_paths_agree_on_single_images_and_identity_policies() -> None:
    image = _images(1, 3, 9, 9, torch.uint8)[0]
    _assert_same(*_both(compile_policy([[("Rotate", 1.0, 0.4), ("Equalize", 1.0, 0)]]), image, 2))
    identity = compile_policy([[("Identity", 1.0, 0.0)]])
    assert identity.vocabulary == ((),)
    out = apply(identity, image, _gen(0), path="static")
    assert torch.equal(out, image) and out.data_ptr() != image.data_ptr()


def test_static_path_is_seeded_by_the_generator_alone() -> None:
    compiled = compile_policy([[("Cutout", 0.8, 0.5), ("Rotate", 0.5, 0.3)], [("Hue", 0.9, 0.4)]])
    images = _images(16, 3, 8, 8, torch.float32)
    state = torch.get_rng_state()
    first = apply(compiled, images, _gen(5), path="static")
    assert torch.equal(first, apply(compiled, images, _gen(5), path="static"))
    assert not torch.equal(first, apply(compiled, images, _gen(6), path="static"))
    assert torch.equal(torch.get_rng_state(), state)


def test_auto_takes_the_grouped_path_on_the_cpu() -> None:
    # Cutout draws differently on the two paths: equality shows which one ran.
    genes = [[("Cutout", 0.9, 0.5), ("Rotate", 0.5, 0.3)]]
    compiled = compile_policy(genes)
    images = _images(32, 3, 12, 12, torch.float32)
    auto = apply(compiled, images, _gen(0))
    assert torch.equal(auto, apply(compiled, images, _gen(0), path="grouped"))
    assert not torch.equal(auto, apply(compiled, images, _gen(0), path="static"))
    assert torch.equal(auto, Policy.from_genes(genes)(images, generator=_gen(0)))


def test_resolve_path_chooses_by_device() -> None:
    assert resolve_path("auto", torch.device("cpu")) == "grouped"
    assert resolve_path("auto", torch.device("cuda", 0)) == "static"
    assert resolve_path("auto", torch.device("meta")) == "static"
    assert resolve_path("grouped", torch.device("cuda")) == "grouped"
    assert resolve_path("static", torch.device("cpu")) == "static"


def test_apply_rejects_an_unknown_path() -> None:
    compiled = compile_policy([[("Invert", 1.0, 0.0)]])
    with pytest.raises(ConfigError, match=r"`path` must be one of \['auto', 'grouped', 'static'\]"):
        apply(compiled, torch.rand(2, 3, 4, 4), _gen(0), path="fused")  # type: ignore[arg-type]
