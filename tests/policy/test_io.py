import json
import re
from pathlib import Path

import pytest
import torch
import yaml

import evoaug
from evoaug.policy import FORMAT_VERSION

BAD = Path(__file__).parent / "bad_policies"
FIXTURES = Path(__file__).parent / "fixtures"
JSON_EXPECT = {
    "unknown_key.json": r"policy has unknown keys \['_expect'\]",
    "trailing_comma.json": r"is not valid JSON",
}


def _expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    match = re.match(r"# expect: (.*)", first)
    assert match, f"{path.name} lacks an '# expect:' first line"
    return match.group(1)


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.name)
def test_bad_yaml_policy_raises_config_error(path: Path) -> None:
    with pytest.raises(evoaug.ConfigError, match=_expectation(path)):
        evoaug.Policy.from_yaml(path)


@pytest.mark.parametrize("path", sorted(BAD.glob("*.json")), ids=lambda p: p.name)
def test_bad_json_policy_raises_config_error(path: Path) -> None:
    with pytest.raises(evoaug.ConfigError, match=JSON_EXPECT[path.name]):
        evoaug.Policy.from_json(path)


def test_corpus_has_at_least_ten_kinds() -> None:
    assert len(list(BAD.glob("*.yaml"))) + len(list(BAD.glob("*.json"))) >= 10


def test_yaml_tag_never_constructs_an_object(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = (
        "format_version: 1\nsub_policies:\n"
        f"- - !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(evoaug.ConfigError, match="never constructed"):
        evoaug.Policy.from_yaml(text)
    assert not marker.exists()


def test_missing_file_is_named() -> None:
    with pytest.raises(evoaug.ConfigError, match=r"policy file not found: 'nope/policy\.yaml'"):
        evoaug.Policy.from_yaml("nope/policy.yaml")


def test_to_dict_holds_builtins_only_and_names_ops() -> None:
    d = evoaug.Policy.preset("autoaugment-svhn").to_dict()
    assert d["format_version"] == FORMAT_VERSION
    assert d["sub_policies"][0][0] == {
        "op": "ShearX",
        "probability": 0.9,
        "level": pytest.approx(0.3 * 4 / 9 / 0.99),
    }

    def builtins_only(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and builtins_only(v) for k, v in value.items())
        if isinstance(value, list):
            return all(builtins_only(v) for v in value)
        return value is None or type(value) in (str, int, float, bool)

    assert builtins_only(d)
    yaml.safe_dump(d)  # safe_dump refuses anything but builtins


@pytest.mark.parametrize("name", evoaug.policy.presets())
def test_yaml_round_trip_gives_bit_identical_outputs(name: str, tmp_path: Path) -> None:
    policy = evoaug.Policy.preset(name)
    path = tmp_path / "policy.yaml"
    policy.to_yaml(path)
    loaded = evoaug.Policy.from_yaml(path)
    assert loaded == policy
    images = torch.rand(16, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    a = policy(images, generator=torch.Generator().manual_seed(7))
    b = loaded(images, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_json_round_trip_and_text_sources(tmp_path: Path) -> None:
    policy = evoaug.Policy.preset("autoaugment-imagenet")
    text = policy.to_json(tmp_path / "p.json")
    assert json.loads(text)["name"] == "autoaugment-imagenet"
    assert evoaug.Policy.from_json(tmp_path / "p.json") == policy
    assert evoaug.Policy.from_json(text) == policy
    assert evoaug.Policy.from_yaml(policy.to_yaml()) == policy
    assert evoaug.Policy.from_yaml(str(tmp_path / "p.json")) == policy  # JSON is YAML


def test_version_1_fixture_still_loads() -> None:
    policy = evoaug.Policy.from_yaml(FIXTURES / "policy_v1.yaml")
    assert policy.name == "fixture-v1"
    assert [sub.ops for sub in policy] == [
        ("Invert", "Contrast"),
        ("Rotate", "TranslateX"),
        ("Posterize",),
    ]
    assert policy.sub_policies[2].genes[0].magnitude == pytest.approx(5.0)  # bits kept


def test_level_defaults_for_ops_without_magnitude() -> None:
    policy = evoaug.Policy.from_dict({"format_version": 1, "sub_policies": [[{"op": "Equalize"}]]})
    gene = policy.sub_policies[0].genes[0]
    assert (gene.probability, gene.level) == (1.0, 0.0)


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    evoaug.Policy.preset("identity").to_yaml(tmp_path / "sub" / "p.yaml")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["p.yaml"]
