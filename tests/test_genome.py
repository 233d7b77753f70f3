import numpy as np
import pytest

import evoaug
from evoaug import GenomeSpace, Policy


def test_dimension_and_decoding_are_total() -> None:
    space = GenomeSpace(n_subpolicies=3, n_genes=2)
    assert space.dim == 18
    rng = np.random.default_rng(0)
    for x in [np.zeros(18), np.ones(18), *space.random(rng, 20)]:
        policy = space.decode(x)
        assert len(policy) == 3 and all(len(sub) == 2 for sub in policy)


def test_every_op_bin_is_reachable_and_boundaries_map_inside() -> None:
    space = GenomeSpace()
    assert {space.op_at(space.op_coordinate(op)) for op in space.ops} == set(space.ops)
    assert space.op_at(1.0) == space.ops[-1]
    assert space.op_at(0.0) == space.ops[0]


def test_encode_decode_round_trip() -> None:
    space = GenomeSpace(n_subpolicies=25, n_genes=2)
    policy = Policy.preset("autoaugment-cifar10")
    decoded = space.decode(space.encode(policy))
    assert [sub.ops for sub in decoded] == [sub.ops for sub in policy]
    for a, b in zip(decoded, policy, strict=True):
        for ga, gb in zip(a, b, strict=True):
            assert ga.probability == pytest.approx(gb.probability)
            assert ga.level == pytest.approx(gb.level)


def test_encode_pads_short_sub_policies_with_identity() -> None:
    space = GenomeSpace(n_subpolicies=2, n_genes=3)
    decoded = space.decode(space.encode(Policy.preset("autoaugment-svhn")))
    assert decoded.sub_policies[0].ops == ("ShearX", "Invert", "Identity")
    assert decoded.sub_policies[0].genes[2].probability == 0.0


def test_decoded_policies_are_deterministic_functions_of_the_genome() -> None:
    space = GenomeSpace(n_subpolicies=5, n_genes=2)
    x = space.random(np.random.default_rng(42))
    assert space.decode(x) == space.decode(x.copy())
    assert space.decode(x) != space.decode(space.random(np.random.default_rng(43)))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"ops": []}, evoaug.ConfigError, "at least one op"),
        ({"ops": ["Rotate", "Rotate"]}, evoaug.ConfigError, r"duplicates \['Rotate'\]"),
        ({"ops": ["Rotate", "Spin"]}, evoaug.UnknownOpError, "unknown op 'Spin'"),
        (
            {"n_subpolicies": 0},
            evoaug.ConfigError,
            r"`n_subpolicies` must be an int in \[1, 256\], got 0",
        ),
        ({"n_genes": 2.0}, evoaug.ConfigError, r"`n_genes` must be an int"),
        ({"magnitude_sampling": "x"}, evoaug.ConfigError, "`magnitude_sampling` must be one of"),
    ],
)
def test_bad_space_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        GenomeSpace(**kwargs)


def test_bad_genomes_and_policies() -> None:
    space = GenomeSpace(ops=["Rotate", "Invert"], n_subpolicies=1, n_genes=1)
    with pytest.raises(evoaug.ConfigError, match="genome must have length 3, got 4"):
        space.decode(np.zeros(4))
    with pytest.raises(evoaug.ConfigError, match="finite"):
        space.decode(np.array([0.1, np.nan, 0.2]))
    with pytest.raises(evoaug.ConfigError, match=r"ops \['Equalize'\] that are not in"):
        space.encode(Policy.from_genes([[("Equalize", 1.0, 0.0)]]))
    with pytest.raises(evoaug.ConfigError, match="`rng` must be a numpy.random.Generator"):
        space.random(0)  # type: ignore[arg-type]
