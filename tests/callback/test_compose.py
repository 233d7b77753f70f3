"""Policies the decision composes: challengers added to the incumbent, keys, the regularizer."""

from evoaug import Policy
from evoaug.callback._compose import added, sized, within
from evoaug.callback._compose import policy_key as key
from evoaug.search import op_probe

CREDIT = Policy.from_genes([[("Solarize", 0.5, 1.0)]], name="evoaug credit: Solarize")


def test_a_credit_op_is_added_to_the_incumbent_not_swapped_for_it() -> None:
    incumbent = Policy.from_genes(
        [[("VerticalFlip", 0.5, 1.0)]], name="evoaug coverage: VerticalFlip"
    )
    both = added(incumbent, CREDIT)
    assert both.name == "evoaug coverage: VerticalFlip + Solarize"
    assert [[(g.op, g.probability) for g in sub] for sub in both.sub_policies] == [
        [("VerticalFlip", 0.5), ("Solarize", 0.5)]
    ]
    two = Policy.from_genes([[("Invert", 0.5, 0.0)], [("Rotate", 0.5, 1.0)]], name="credit two")
    assert [sub.ops for sub in added(incumbent, two).sub_policies] == [
        ("VerticalFlip", "Invert"),
        ("VerticalFlip", "Rotate"),
    ]  # each of the challenger's sub-policies after the incumbent's


def test_identity_incumbent_takes_the_challenger_as_it_is() -> None:
    assert added(Policy.preset("identity"), CREDIT) is CREDIT


def test_keys_follow_the_genes_not_the_name() -> None:
    renamed = Policy(CREDIT.sub_policies, name="another name")
    assert key(renamed) == key(CREDIT) != key(op_probe("Solarize"))


def test_a_regularizer_keeps_only_the_ops_the_search_space_has() -> None:
    ta = Policy.preset("trivialaugment")
    assert within(ta, ta.ops) is ta
    kept = within(ta, ("Rotate", "Invert"))
    assert kept is not None and set(kept.ops) == {"Identity", "Rotate"}
    assert within(ta, ("Invert",)) is None  # nothing but Identity left
    assert within(None, ("Invert",)) is None


def test_a_preset_regularizer_takes_the_probes_image_size() -> None:
    ta = Policy.preset("trivialaugment")
    wide = sized(ta, 64)
    assert wide == Policy.preset("trivialaugment", image_size=64) != ta  # 32 pixels of 64
    assert sized(ta, 32) == ta
    custom = Policy.from_genes([[("TranslateX", 0.5, 1.0)]], name="trivialaugment")
    assert sized(custom, 64) is custom  # not the preset: as given
    assert sized(Policy.preset("identity"), 64) == Policy.preset("identity")  # no image size
