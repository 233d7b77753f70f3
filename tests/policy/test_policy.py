import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import evoaug
from evoaug import Gene, Policy, SubPolicy


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_trivialaugment_is_per_sample() -> None:
    image = torch.rand(1, 3, 32, 32, generator=_gen(3))
    out = Policy.preset("trivialaugment")(image.repeat(256, 1, 1, 1), generator=_gen())
    distinct = {tuple(v.flatten().tolist()) for v in out}
    assert len(distinct) >= 100


def test_each_image_draws_its_own_sub_policy() -> None:
    policy = Policy.from_genes([[("Invert", 1.0, 0.0)], [("Identity", 1.0, 0.0)]])
    images = torch.full((400, 1, 4, 4), 0.25)
    out = policy(images, generator=_gen())
    inverted = (out[:, 0, 0, 0] == 0.75).float().mean().item()
    assert 0.4 < inverted < 0.6
    assert set(out[:, 0, 0, 0].tolist()) == {0.25, 0.75}


def test_probability_is_a_per_image_coin_flip() -> None:
    policy = Policy.from_genes([[("Invert", 0.3, 0.0)]])
    out = policy(torch.zeros(2000, 1, 2, 2), generator=_gen())
    assert abs(out[:, 0, 0, 0].mean().item() - 0.3) < 0.04


def test_signed_ops_flip_sign_per_image() -> None:
    policy = Policy.from_genes([[("Brightness", 1.0, 0.5)]])
    out = policy(torch.full((1000, 1, 2, 2), 0.5), generator=_gen())
    factor = out[:, 0, 0, 0] / 0.5
    magnitude = 0.5 * 0.99
    assert {round(f, 4) for f in factor.tolist()} == {
        round(1 - magnitude, 4),
        round(1 + magnitude, 4),
    }
    assert abs((factor > 1).float().mean().item() - 0.5) < 0.06


def test_uniform_magnitude_sampling_draws_levels_per_image() -> None:
    fixed = Policy.from_genes([[("Brightness", 1.0, 1.0)]])
    uniform = Policy.from_genes([[("Brightness", 1.0, 1.0)]], magnitude_sampling="uniform")
    images = torch.full((500, 1, 2, 2), 0.5)
    assert len(set(fixed(images, generator=_gen())[:, 0, 0, 0].tolist())) == 2
    assert len(set(uniform(images, generator=_gen())[:, 0, 0, 0].tolist())) > 400


def test_seeded_calls_are_reproducible_and_seeds_differ() -> None:
    policy = Policy.preset("autoaugment-cifar10")
    images = torch.rand(32, 3, 16, 16, generator=_gen(1))
    assert torch.equal(policy(images, generator=_gen(5)), policy(images, generator=_gen(5)))
    assert not torch.equal(policy(images, generator=_gen(5)), policy(images, generator=_gen(6)))


def test_global_rng_state_is_untouched() -> None:
    state = torch.get_rng_state()
    Policy.preset("trivialaugment")(torch.rand(8, 3, 8, 8, generator=_gen()), generator=None)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("channels", [1, 3])
def test_uint8_in_uint8_out(channels: int) -> None:
    images = torch.randint(0, 256, (8, channels, 12, 10), dtype=torch.uint8, generator=_gen())
    out = Policy.preset("autoaugment-svhn")(images, generator=_gen())
    assert out.dtype == torch.uint8 and out.shape == images.shape


def test_single_image_and_float64_and_half() -> None:
    policy = Policy.preset("trivialaugment")
    single = torch.rand(3, 9, 11, generator=_gen())
    assert policy(single, generator=_gen()).shape == (3, 9, 11)
    assert policy(single.double(), generator=_gen()).dtype == torch.float64
    assert policy(single.half(), generator=_gen()).dtype == torch.float16


def test_identity_policy_returns_input() -> None:
    images = torch.rand(4, 3, 8, 8, generator=_gen())
    assert torch.equal(Policy.preset("identity")(images, generator=_gen()), images)


def test_empty_batch() -> None:
    images = torch.rand(0, 3, 8, 8)
    assert Policy.preset("trivialaugment")(images).shape == (0, 3, 8, 8)


def test_input_is_not_modified_in_place() -> None:
    images = torch.rand(16, 3, 8, 8, generator=_gen())
    before = images.clone()
    Policy.preset("autoaugment-cifar10")(images, generator=_gen())
    assert torch.equal(images, before)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ([[0.0]], r"`images` must be a torch.Tensor .* got list"),
        (torch.rand(2, 3, 4, 4, 1), r"shape \[B, C, H, W\] or \[C, H, W\], got \(2, 3, 4, 4, 1\)"),
        (torch.rand(2, 4, 4, 3), r"got shape \(2, 4, 4, 3\); .* `.permute\(0, 3, 1, 2\)`"),
        (torch.rand(4, 4, 3), r"got shape \(4, 4, 3\); .* `.permute\(2, 0, 1\)`"),
        (torch.rand(2, 3, 0, 5), r"at least 1x1 pixels \(H, W\), got shape \(2, 3, 0, 5\)"),
        (torch.zeros(3, 4, 0, dtype=torch.uint8), r"at least 1x1 pixels"),
        (torch.rand(2, 3, 4, 4) * 255, r"must be in \[0, 1\], got values in \[.*augment before"),
        (torch.full((1, 3, 2, 2), float("nan")), r"must be in \[0, 1\]"),
        (torch.ones(1, 3, 2, 2, dtype=torch.int32), r"float in \[0, 1\] or uint8, got dtype"),
    ],
)
def test_bad_images_raise_input_error(images: object, message: str) -> None:
    with pytest.raises(evoaug.InputError, match=message):
        Policy.preset("identity")(images)  # type: ignore[arg-type]


def test_constructor_validation() -> None:
    with pytest.raises(evoaug.UnknownOpError, match="unknown op 'Nope'"):
        Gene("Nope", 0.5, 0.5)
    with pytest.raises(evoaug.ConfigError, match=r"`level` must be a number in \[0, 1\], got 2"):
        Gene("Rotate", 0.5, 2)
    with pytest.raises(evoaug.ConfigError, match="at least one gene"):
        SubPolicy(())
    with pytest.raises(evoaug.ConfigError, match="at least one sub-policy"):
        Policy(())
    with pytest.raises(evoaug.ConfigError, match=r"`sub_policies\[0\]` must be a SubPolicy"):
        Policy(("Rotate",))  # type: ignore[arg-type]
    with pytest.raises(evoaug.ConfigError, match="`magnitude_sampling` must be one of"):
        Policy.from_genes([[("Invert", 1.0, 0.0)]], magnitude_sampling="normal")  # type: ignore[arg-type]
    # What can be built can be saved and read back: the files' limits hold here too.
    with pytest.raises(evoaug.ConfigError, match="a sub-policy holds at most 16 genes, got 17"):
        SubPolicy((Gene("Invert", 0.5),) * 17)
    with pytest.raises(evoaug.ConfigError, match="at most 4096 sub-policies, got 4097"):
        Policy((SubPolicy((Gene("Invert", 0.5),)),) * 4097)
    longest = Policy.from_genes([[("Invert", 0.5, 0.0)] * 16])
    assert Policy.from_yaml(longest.to_yaml()) == longest


def test_genes_take_any_real_number_but_bool() -> None:
    gene = Gene("Rotate", np.float32(0.5), np.int64(1))
    assert (gene.probability, gene.level) == (0.5, 1.0)
    assert type(gene.probability) is float and type(gene.level) is float
    for bad in (True, np.bool_(True), torch.tensor(0.5), "0.5"):
        with pytest.raises(evoaug.ConfigError, match=r"`probability` must be a number in \[0, 1\]"):
            Gene("Rotate", bad, 0.2)  # type: ignore[arg-type]


def test_str_lists_sub_policies() -> None:
    text = str(Policy.preset("autoaugment-cifar10"))
    assert text.splitlines()[0] == "Policy 'autoaugment-cifar10': 25 sub-policies"
    assert "Invert(p=0.10, level=0.00) -> Contrast(p=0.20, level=0.61)" in text


def test_custom_op_in_a_policy() -> None:
    @evoaug.register_op("TestDarken", low=0.0, high=0.5)
    def darken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        return images * (1 - magnitudes.view(-1, 1, 1, 1))

    try:
        policy = Policy.from_genes([[("TestDarken", 1.0, 1.0)]])
        out = policy(torch.ones(3, 1, 2, 2), generator=_gen())
        assert torch.allclose(out, torch.full_like(out, 0.5))
    finally:
        evoaug.ops.unregister_op("TestDarken")


def test_failing_op_raises_op_error_naming_it() -> None:
    @evoaug.register_op("TestBroken")
    def broken(images: torch.Tensor, magnitudes: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    try:
        with pytest.raises(evoaug.OpError, match="op 'TestBroken' raised RuntimeError: boom"):
            Policy.from_genes([[("TestBroken", 1.0, 0.5)]])(torch.rand(2, 3, 4, 4))
    finally:
        evoaug.ops.unregister_op("TestBroken")


def _policy_modules_imported_by(module: str) -> set[str]:
    path = Path(evoaug.policy.__file__).parent / f"{module}.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("evoaug.policy")}


def test_the_policy_module_sits_above_files_presets_and_exports() -> None:
    """One-way: the policy module uses them, they never import it (nor each other)."""
    assert _policy_modules_imported_by("_genes") == set()
    for module in ("_io", "_presets", "_torchvision", "_albumentations"):
        imported = _policy_modules_imported_by(module)
        assert imported and all(name.startswith("evoaug.policy._genes") for name in imported)
