"""The engine's entry point: compile_policy and apply, without a Policy.

How batches are grouped, fused and chunked is tested through policies in tests/policy/; here,
what the engine promises on its own: the same pixels as the policy it mirrors, its checks, its
compiled tables and their devices.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import evoaug
from evoaug import ConfigError, InputError, Policy, UnknownOpError
from evoaug.augment import apply, compile_policy
from evoaug.augment._draws import draw, positions
from evoaug.ops import get_op

GENES = [
    [("Rotate", 0.8, 0.3), ("Invert", 0.5, 0.0)],
    [("Identity", 1.0, 0.0)],
    [("Cutout", 0.7, 0.5), ("Posterize", 0.6, 0.4), ("ShearX", 0.5, 0.5)],
]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("sampling", ["fixed", "uniform"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_apply_gives_the_pixels_of_the_policy(
    sampling: str, interpolation: str, dtype: torch.dtype
) -> None:
    policy = Policy.from_genes(
        GENES,
        magnitude_sampling=sampling,  # type: ignore[arg-type]
        interpolation=interpolation,  # type: ignore[arg-type]
    )
    compiled = compile_policy(
        GENES,
        magnitude_sampling=sampling,  # type: ignore[arg-type]
        interpolation=interpolation,  # type: ignore[arg-type]
    )
    images = torch.rand(48, 3, 9, 7, generator=_gen(1))
    if dtype == torch.uint8:
        images = (images * 255).round().to(torch.uint8)
    out = apply(compiled, images, _gen(2))
    assert torch.equal(out, policy(images, generator=_gen(2)))
    assert out.dtype == dtype and not torch.equal(out, images)


def test_compiled_tables_rank_affine_ops_first_and_uint8_kernels_last() -> None:
    compiled = compile_policy(GENES)
    assert [spec.name for spec in compiled.specs] == [
        "Rotate",
        "ShearX",
        "Cutout",
        "Invert",
        "Posterize",
    ]
    assert compiled.n_affine == 2
    assert compiled.vocabulary == ((0, 2), (3, 4), (1,))
    assert compiled.bounds == (None,) * 5
    assert compiled.rank.tolist() == [[0, 3, -1], [-1, -1, -1], [2, 4, 1]]
    assert compiled.values.shape == (2, 3, 3) and compiled.values.dtype == torch.float32
    assert compiled.values[:, 2, 1].tolist() == pytest.approx([0.6, 0.4])
    assert compiled.ranges.shape == (3, len(compiled.specs) + 1)
    assert compiled.registry_version == evoaug.ops.registry_version()
    assert compiled.device == torch.device("cpu") and compiled.to("cpu") is compiled


@pytest.mark.parametrize("sampling", ["fixed", "uniform"])
def test_bounds_are_the_largest_magnitudes_the_draws_can_give(sampling: str) -> None:
    genes = [[("GaussianBlur", 1.0, 0.7), ("Invert", 1.0, 0.0)], [("GaussianBlur", 1.0, 0.3)]]
    compiled = compile_policy(genes, magnitude_sampling=sampling)  # type: ignore[arg-type]
    assert [spec.name for spec in compiled.specs] == ["GaussianBlur", "Invert"]
    largest = float(get_op("GaussianBlur").magnitude(torch.tensor(0.7)))  # float32, as drawn
    assert compiled.bounds == (largest, None)
    draws = draw(compiled, 512, _gen(0), torch.device("cpu"))
    key, mags = next(positions(compiled, draws))
    assert float(mags[key == 0].max()) <= largest
    assert (sampling == "uniform") != (float(mags[key == 0].max()) == largest)


def test_apply_draws_only_from_the_generator() -> None:
    compiled = compile_policy(GENES)
    images = torch.rand(16, 3, 8, 8, generator=_gen())
    state = torch.get_rng_state()
    first = apply(compiled, images, _gen(5))
    assert torch.equal(first, apply(compiled, images, _gen(5)))
    assert not torch.equal(first, apply(compiled, images, _gen(6)))
    assert torch.equal(torch.get_rng_state(), state)
    assert apply(compiled, images).shape == images.shape  # a fresh OS-seeded stream


def test_one_image_and_empty_batches() -> None:
    compiled = compile_policy(GENES)
    image = torch.rand(3, 8, 8, generator=_gen())
    assert apply(compiled, image, _gen()).shape == (3, 8, 8)
    empty = torch.rand(0, 3, 8, 8)
    assert apply(compiled, empty, _gen()) is empty


@pytest.mark.parametrize(
    ("sub_policies", "kwargs", "error", "match"),
    [
        ([], {}, ConfigError, "`sub_policies` must hold at least one sub-policy, got none"),
        ([[("Rotate", 0.5)]], {}, ConfigError, r"`sub_policies\[0\]\[0\]` must be a tuple"),
        ([[(3, 0.5, 0.5)]], {}, ConfigError, r"must start with an op name \(str\), got 3"),
        ([[("Nope", 0.5, 0.5)]], {}, UnknownOpError, "Nope"),
        (
            [[("Rotate", 1.5, 0.5)]],
            {},
            ConfigError,
            r"`sub_policies\[0\]\[0\].probability` must be a number in \[0, 1\], got 1.5",
        ),
        (
            [[("Rotate", 0.5, float("nan"))]],
            {},
            ConfigError,
            r"`sub_policies\[0\]\[0\].level` must be a number in \[0, 1\], got nan",
        ),
        (
            [[("Rotate", 0.5, 0.5)]],
            {"magnitude_sampling": "gaussian"},
            ConfigError,
            r"`magnitude_sampling` must be one of \['fixed', 'uniform'\], got 'gaussian'",
        ),
        (
            [[("Rotate", 0.5, 0.5)]],
            {"interpolation": "bicubic"},
            ConfigError,
            r"`interpolation` must be one of \['bilinear', 'nearest'\], got 'bicubic'",
        ),
    ],
)
def test_compile_policy_refuses_bad_genes(
    sub_policies: list[list[tuple[object, ...]]],
    kwargs: dict[str, str],
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        compile_policy(sub_policies, **kwargs)  # type: ignore[arg-type]


def test_apply_refuses_what_is_not_compiled_or_not_images() -> None:
    with pytest.raises(ConfigError, match="`compiled` must be a CompiledPolicy .* got Policy"):
        apply(Policy.from_genes(GENES), torch.rand(2, 3, 4, 4))  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"float `images` must be in \[0, 1\]"):
        apply(compile_policy(GENES), torch.full((2, 3, 4, 4), 2.0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_compiled_tables_follow_the_images_to_the_gpu() -> None:
    compiled = compile_policy(GENES)
    on_gpu = compiled.to("cuda")
    assert on_gpu.device.type == "cuda" and on_gpu.specs is compiled.specs
    images = torch.rand(32, 3, 8, 8, generator=_gen())
    out = apply(on_gpu, images.cuda(), _gen(3))  # "auto": the static path on the GPU
    assert out.device.type == "cuda"
    assert torch.allclose(out.cpu(), apply(compiled, images, _gen(3), path="static"), atol=1e-5)
    # Cutout draws differently on the two paths: each path against itself on the CPU.
    grouped = apply(on_gpu, images.cuda(), _gen(3), path="grouped")
    assert torch.allclose(grouped.cpu(), apply(compiled, images, _gen(3)), atol=1e-5)


def test_the_engine_sits_below_the_policies() -> None:
    """It imports the op catalog's public names, nothing of the layers above."""
    for path in Path(evoaug.augment.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("evoaug.ops._"), (path.name, name)
                assert not name.startswith(("evoaug.policy", "evoaug.pipeline", "evoaug.genome"))
