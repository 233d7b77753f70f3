import pytest
import torch
from torch import nn

from evoaug import ConfigError
from evoaug.evaluate._validate import feature_module_name
from evoaug.models import (
    MODELS,
    ResNet18,
    SmallCNN,
    WideResNet,
    available_models,
    build_model,
)


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("name", "channels"),
    [
        ("small-cnn", 1),
        ("small-cnn", 3),
        ("resnet18", 1),
        ("resnet18", 3),
        ("wrn-16-4", 1),
        ("wrn-16-4", 3),
        ("wrn-40-2", 3),
    ],
)
def test_output_shape_for_grey_and_rgb(name: str, channels: int) -> None:
    net = build_model(name, in_channels=channels, num_classes=7).eval()
    with torch.no_grad():
        out = net(torch.rand(1, channels, 32, 32))
    assert out.shape == (1, 7)
    assert torch.isfinite(out).all()


def test_every_network_ends_in_fc_so_diversity_uses_its_input() -> None:
    for name in ("small-cnn", "resnet18", "wrn-16-4"):
        net = build_model(name, num_classes=3)
        assert isinstance(net.fc, nn.Linear)
        assert feature_module_name(net, None) == "fc"


def test_parameter_counts_match_the_papers() -> None:
    # WRN-28-10: 36.5M (Zagoruyko & Komodakis, Table 1); ResNet-18 CIFAR variant: 11.2M.
    assert _count(build_model("wrn-28-10")) == 36_479_194
    assert _count(ResNet18()) == 11_173_962
    assert _count(build_model("wrn-40-2")) == 2_243_546
    assert _count(build_model("wrn-16-4")) == 2_748_890
    assert _count(SmallCNN()) < 100_000


def test_small_cnn_accepts_any_size_from_8x8() -> None:
    net = SmallCNN(in_channels=3, num_classes=4, width=8, dropout=0.5).eval()
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 4)
    assert net(torch.rand(1, 3, 48, 40)).shape == (1, 4)


def test_registry_factories_fix_depth_and_width() -> None:
    net = build_model("wrn-16-4", num_classes=5, dropout=0.3)
    assert isinstance(net, WideResNet)
    assert net.fc.in_features == 64 * 4
    assert len(net.block1) == 2  # (16 - 4) / 6 blocks per group
    assert available_models() == sorted(MODELS)


@pytest.mark.parametrize("depth", [27, 4, 16.0, True])
def test_wide_resnet_depth_must_be_6n_plus_4(depth: object) -> None:
    with pytest.raises(ConfigError, match=r"`depth` must be 6n \+ 4"):
        WideResNet(depth=depth)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 1}, "`num_classes` must be an int >= 2, got 1"),
        ({"in_channels": 0}, "`in_channels` must be an int >= 1, got 0"),
        ({"dropout": 1.0}, r"`dropout` must be a number in \[0, 1\), got 1.0"),
        ({"width": "wide"}, "`width` must be an int >= 1, got 'wide'"),
    ],
)
def test_small_cnn_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SmallCNN(**kwargs)  # type: ignore[arg-type]


def test_wide_resnet_bad_width() -> None:
    with pytest.raises(ConfigError, match="`widen_factor` must be an int >= 1, got 0"):
        WideResNet(depth=16, widen_factor=0)


def test_unknown_model_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'wrn-28-1'\. Did you mean 'wrn-28-10'"):
        build_model("wrn-28-1")
    with pytest.raises(ConfigError, match=r"Available models: \['resnet18', 'small-cnn'"):
        build_model("vgg")


def test_unexpected_argument_lists_the_accepted_ones() -> None:
    with pytest.raises(ConfigError, match=r"model 'wrn-28-10' takes the arguments \['in_channels'"):
        build_model("wrn-28-10", depth=16)
