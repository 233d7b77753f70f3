import pytest
import torch
from torchvision.transforms import v2

import evoaug
from evoaug import Policy

WIDTH = HEIGHT = 32


def _published(space: dict, op: str, index: int, num_bins: int) -> float:
    magnitudes_fn, _ = space[op]
    values = magnitudes_fn(num_bins, HEIGHT, WIDTH)
    if values is None:
        return 0.0
    value = float(values[index])
    return value / WIDTH if op.startswith("Translate") else value


def _evoaug_magnitude(gene: evoaug.Gene) -> float:
    return gene.magnitude if evoaug.get_op(gene.op).has_magnitude else 0.0


@pytest.mark.parametrize(
    ("name", "tv_policy"),
    [
        ("autoaugment-cifar10", v2.AutoAugmentPolicy.CIFAR10),
        ("autoaugment-svhn", v2.AutoAugmentPolicy.SVHN),
        ("autoaugment-imagenet", v2.AutoAugmentPolicy.IMAGENET),
    ],
)
def test_autoaugment_presets_equal_published_tables(name: str, tv_policy: object) -> None:
    reference = v2.AutoAugment(tv_policy)
    ours = Policy.preset(name)
    assert len(ours) == len(reference._policies) == 25
    for sub, published in zip(ours, reference._policies, strict=True):
        assert sub.ops == tuple(op for op, _, _ in published)
        for gene, (op, prob, index) in zip(sub, published, strict=True):
            assert gene.probability == prob
            assert evoaug.get_op(op).signed == reference._AUGMENTATION_SPACE[op][1]
            expected = (
                0.0 if index is None else _published(reference._AUGMENTATION_SPACE, op, index, 10)
            )
            assert _evoaug_magnitude(gene) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("num_ops", "magnitude"), [(1, 0), (2, 9), (2, 30), (3, 14)])
def test_randaugment_preset_equals_published_space(num_ops: int, magnitude: int) -> None:
    reference = v2.RandAugment(num_ops=num_ops, magnitude=magnitude)
    ours = Policy.preset("randaugment", num_ops=num_ops, magnitude=magnitude)
    ops = list(reference._AUGMENTATION_SPACE)
    assert len(ours) == len(ops) ** num_ops
    # Uniform over all sequences == num_ops independent uniform draws, as torchvision does.
    assert {sub.ops for sub in ours} == {
        tuple(seq) for seq in __import__("itertools").product(ops, repeat=num_ops)
    }
    for sub in ours:
        for gene in sub:
            assert gene.probability == 1.0
            expected = _published(reference._AUGMENTATION_SPACE, gene.op, magnitude, 31)
            assert _evoaug_magnitude(gene) == pytest.approx(expected, abs=1e-6)


def test_trivialaugment_preset_spans_the_wide_space() -> None:
    reference = v2.TrivialAugmentWide()
    ours = Policy.preset("trivialaugment")
    assert ours.magnitude_sampling == "uniform"
    assert [sub.ops[0] for sub in ours] == list(reference._AUGMENTATION_SPACE)
    for sub in ours:
        (gene,) = sub.genes
        assert gene.probability == 1.0
        top = _published(reference._AUGMENTATION_SPACE, gene.op, 30, 31)
        assert _evoaug_magnitude(gene) == pytest.approx(top, abs=1e-6)
        assert evoaug.get_op(gene.op).signed == reference._AUGMENTATION_SPACE[gene.op][1]


def test_trivialaugment_translation_is_32_pixels_at_any_size() -> None:
    policy = Policy.preset("trivialaugment", image_size=224)
    translate = next(sub.genes[0] for sub in policy if sub.ops == ("TranslateX",))
    assert translate.magnitude * 224 == pytest.approx(32.0)


def test_identity_preset() -> None:
    assert [sub.ops for sub in Policy.preset("identity")] == [("Identity",)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "autoaugment"}, r"`name` must be one of \['identity', .*got 'autoaugment'"),
        ({"name": "randaugment", "num_ops": 4}, r"`num_ops` must be an int in \[0, 3\], got 4"),
        ({"name": "randaugment", "magnitude": 31}, r"`magnitude` must be in \[0, 30\]"),
        ({"name": "randaugment", "magnitude": 9.5}, r"`magnitude` must be an int bin index"),
        ({"name": "trivialaugment", "image_size": 0}, r"`image_size` must be a positive int"),
        ({"name": "identity", "strength": 1}, r"preset 'identity' does not accept \['strength'\]"),
    ],
)
def test_bad_preset_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(evoaug.ConfigError, match=message):
        Policy.preset(**kwargs)


def test_randaugment_zero_ops_is_identity() -> None:
    images = torch.rand(4, 3, 8, 8)
    policy = Policy.preset("randaugment", num_ops=0)
    assert torch.equal(policy(images, generator=torch.Generator().manual_seed(0)), images)


def test_trivialaugment_translation_stops_at_the_side_below_32_pixels() -> None:
    for side in (8, 28):
        policy = Policy.preset("trivialaugment", image_size=side)
        translate = next(sub.genes[0] for sub in policy if sub.ops == ("TranslateX",))
        assert translate.magnitude == 1.0  # the whole side, where torchvision's is 32 pixels


def test_published_magnitude_bins() -> None:
    from evoaug.policy._presets import published_magnitude

    # One bin is level 0, Posterize included (torchvision divides 0 by 0 there).
    assert published_magnitude("Posterize", 0, 1) == 8.0
    assert published_magnitude("Rotate", 0, 1) == 0.0
    for index, num_bins, message in (
        (2.5, 10, r"`index` must be an int in \[0, 9\], got 2.5"),
        (True, 10, r"`index` must be an int in \[0, 9\], got True"),
        (10, 10, r"`index` must be an int in \[0, 9\], got 10"),
        (0, 0, r"`num_bins` must be an int >= 1, got 0"),
    ):
        with pytest.raises(evoaug.ConfigError, match=message):
            published_magnitude("Rotate", index, num_bins)  # type: ignore[arg-type]
