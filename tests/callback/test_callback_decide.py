"""The decision's helpers: challengers added to the incumbent, keys of refused challengers."""

from evoaug import Policy
from evoaug.callback._decide import _added, _key
from evoaug.search import op_probe

CREDIT = Policy.from_genes([[("Solarize", 0.5, 1.0)]], name="evoaug credit: Solarize")


def test_a_credit_op_is_added_to_the_incumbent_not_swapped_for_it() -> None:
    incumbent = Policy.from_genes(
        [[("VerticalFlip", 0.5, 1.0)]], name="evoaug coverage: VerticalFlip"
    )
    added = _added(incumbent, CREDIT)
    assert added.name == "evoaug coverage: VerticalFlip + Solarize"
    assert [[(g.op, g.probability) for g in sub] for sub in added.sub_policies] == [
        [("VerticalFlip", 0.5), ("Solarize", 0.5)]
    ]
    two = Policy.from_genes([[("Invert", 0.5, 0.0)], [("Rotate", 0.5, 1.0)]], name="credit two")
    assert [sub.ops for sub in _added(incumbent, two).sub_policies] == [
        ("VerticalFlip", "Invert"),
        ("VerticalFlip", "Rotate"),
    ]  # each of the challenger's sub-policies after the incumbent's


def test_identity_incumbent_takes_the_challenger_as_it_is() -> None:
    assert _added(Policy.preset("identity"), CREDIT) is CREDIT


def test_keys_follow_the_genes_not_the_name() -> None:
    renamed = Policy(CREDIT.sub_policies, name="another name")
    assert _key(renamed) == _key(CREDIT) != _key(op_probe("Solarize"))
