"""The scratch model's layout: channels_last for scoring passes on the CPU, its own for steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evoaug import Policy
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe
from evoaug.evaluate._call import Call
from evoaug.evaluate._layout import Layout

CL = torch.channels_last
POLICIES = [Policy.preset("identity"), Policy.preset("trivialaugment")]


class Spy(nn.Module):
    """A small CNN that records the layout of its input and weights at every forward."""

    def __init__(self, flatten_by_view: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 8 * 8, 4)
        self.flatten_by_view = flatten_by_view
        self.calls: list[tuple[bool, bool, bool]] = []  # (grad, input CL, weight CL)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight_cl = not self.conv.weight.is_contiguous()
        self.calls.append((torch.is_grad_enabled(), not x.is_contiguous(), weight_cl))
        h = F.relu(self.bn(self.conv(x)))
        # `view` needs the default layout: a channels_last feature map cannot be viewed flat.
        flat = h.view(h.shape[0], -1) if self.flatten_by_view else h.flatten(1)
        return self.fc(flat)


def _probes() -> tuple[Probe, Probe]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(96, 3, 8, 8, generator=g)
    y = torch.randint(0, 4, (96,), generator=g)
    return Probe(x[:48], y[:48]), Probe(x[48:], y[48:], groups=y[48:] % 2)


def _evaluate(model: nn.Module, **kwargs: object) -> list[dict[str, float]]:
    train, val = _probes()
    evaluator = Evaluator(
        lookahead_steps=3,
        batch_size=16,
        recalibration_size=16,
        **kwargs,  # type: ignore[arg-type]
    )
    results = evaluator.evaluate(
        model, F.cross_entropy, OptimizerSpec("sgd", 0.05), train, val, POLICIES, seed=0
    )
    assert all(r.failure is None for r in results)
    return [r.objectives for r in results]


def _default_layout_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every evaluation from here on keeps the model's own layout: the reference."""
    real = Layout.__init__

    def inactive(self: Layout, model: nn.Module, device: torch.device) -> None:
        real(self, model, device)
        self._tensors = []

    monkeypatch.setattr(Layout, "__init__", inactive)


def _copy_of(model: Spy) -> Spy:
    twin = Spy(model.flatten_by_view)
    twin.load_state_dict(model.state_dict())
    return twin


def test_scoring_runs_channels_last_and_steps_the_model_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[bool, bool, bool]] = []
    real_forward = Call.forward

    def spying(self: Call, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        out = real_forward(self, model, images)
        seen.extend(model.calls[-1:])  # type: ignore[operator]
        return out

    monkeypatch.setattr(Call, "forward", spying)
    torch.manual_seed(0)
    _evaluate(Spy())
    steps = [call for call in seen if call[0]]
    scoring = [call for call in seen if not call[0]]
    assert len(steps) == 3 * len(POLICIES)
    assert all(call == (True, False, False) for call in steps)  # the model's own layout
    assert scoring and all(call == (False, True, True) for call in scoring)


def test_values_match_the_default_layout_to_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = Spy()
    fast = _evaluate(_copy_of(model))
    _default_layout_only(monkeypatch)
    plain = _evaluate(_copy_of(model))
    for a, b in zip(fast, plain, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            assert a[name] == pytest.approx(b[name], abs=1e-5), name


def test_a_model_that_needs_its_layout_gets_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """``x.view`` on a channels_last feature map raises: the call falls back, values equal."""
    torch.manual_seed(0)
    model = Spy(flatten_by_view=True)
    fallback = _evaluate(_copy_of(model))
    _default_layout_only(monkeypatch)
    assert fallback == _evaluate(_copy_of(model))


def test_a_model_already_channels_last_keeps_its_layout() -> None:
    model = Spy().to(memory_format=CL)
    layout = Layout(model, torch.device("cpu"))
    layout.for_scoring()
    with layout.training():
        assert model.conv.weight.is_contiguous(memory_format=CL)
    assert model.conv.weight.is_contiguous(memory_format=CL)
    assert not model.conv.weight.is_contiguous()


def test_the_switch_round_trips_values_and_parameters() -> None:
    model = Spy()
    weight = model.conv.weight
    before = weight.detach().clone()
    layout = Layout(model, torch.device("cpu"))
    layout.for_scoring()
    assert model.conv.weight is weight and weight.is_contiguous(memory_format=CL)
    assert torch.equal(weight, before)
    images = torch.rand(2, 3, 8, 8)
    assert layout.images(images).is_contiguous(memory_format=CL)
    with layout.training():
        assert model.conv.weight is weight and weight.is_contiguous()
        assert torch.equal(weight, before)
        assert layout.images(images) is images  # training passes: untouched
    assert weight.is_contiguous(memory_format=CL) and torch.equal(weight, before)


def test_other_devices_keep_the_model_layout() -> None:
    model = Spy()
    layout = Layout(model, torch.device("meta"))
    layout.for_scoring()
    assert model.conv.weight.is_contiguous()
    images = torch.rand(2, 3, 8, 8)
    assert layout.images(images) is images


def test_a_forward_failing_in_both_layouts_raises() -> None:
    model = Spy()
    model.fc = nn.Linear(3, 4)  # wrong input size: fails whatever the layout
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _evaluate(model)
