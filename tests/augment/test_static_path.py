"""What the GPU needs from the static path, checked on the CPU (issue 21, goal 3).

A static call dispatches the same ATen operations, with the same output shapes, whatever the
draws; it reads no value on the host (no ``item``, ``nonzero``, boolean indexing), which a run
on the ``meta`` device (shapes without data) proves; ``torch.compile(fullgraph=True)`` compiles
it whole; where CUDA is present, a CUDA graph captures it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from evoaug import Policy
from evoaug.augment import CompiledPolicy, apply, compile_policy
from evoaug.augment._apply import _run_grouped
from evoaug.augment._draws import Draws, draw
from evoaug.augment._static import run_static
from evoaug.ops import BUILTIN_OPS

# ATen operations that read a tensor's value on the host, or whose output shape depends on
# values: each is a host synchronization on a GPU.
SYNCING = (
    "aten._local_scalar_dense",
    "aten.item",
    "aten.is_nonzero",
    "aten.equal",
    "aten.allclose",
    "aten.nonzero",
    "aten.argwhere",
    "aten.masked_select",
    "aten.unique",
    "aten._unique",
    "aten._unique2",
    "aten.unique_consecutive",
    "aten.unique_dim",
    "aten.bincount",
    "aten.repeat_interleave.Tensor",
    "aten._linalg_check_errors",
)
# The dynamo warning that it traces through the ops' small lru_cache'd constant builders.
LRU_WARNING = "ignore:Dynamo detected a call to a `functools.lru_cache`:UserWarning"


class Recorder(TorchDispatchMode):
    """Records every dispatched ATen operation with its output shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.index.Tensor:  # boolean indices: a data-dependent shape
            assert not any(i is not None and i.dtype == torch.bool for i in args[1]), func
        outs = out if isinstance(out, (tuple, list)) else (out,)
        shapes = tuple(tuple(o.shape) for o in outs if isinstance(o, torch.Tensor))
        self.calls.append((str(func), shapes))
        return out


def _record(call: Callable[[], object]) -> list[tuple[str, tuple[Any, ...]]]:
    with Recorder() as recorder:
        call()
    return recorder.calls


def _every_op(interpolation: str = "bilinear") -> CompiledPolicy:
    """One sub-policy per built-in op, which always fires, then a second gene."""
    genes = [[(op, 1.0, 0.8), ("Rotate", 0.5, 0.5)] for op in BUILTIN_OPS]
    return compile_policy(genes, interpolation=interpolation)  # type: ignore[arg-type]


def _trivialaugment() -> CompiledPolicy:
    policy = Policy.preset("trivialaugment")
    genes = [[(g.op, g.probability, g.level) for g in sub] for sub in policy.sub_policies]
    return compile_policy(genes, magnitude_sampling=policy.magnitude_sampling)


def _images(dtype: torch.dtype, seed: int, b: int = 24) -> torch.Tensor:
    images = torch.rand(b, 3, 11, 13, generator=torch.Generator().manual_seed(seed))
    return (images * 255).round().to(torch.uint8) if dtype == torch.uint8 else images


def _draws(compiled: CompiledPolicy, choice: torch.Tensor, seed: int) -> Draws:
    length = compiled.rank.shape[1]
    g = torch.Generator().manual_seed(seed)
    return Draws(choice, torch.rand(length, 3, choice.shape[0], generator=g))


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_static_call_dispatches_the_same_ops_whatever_the_draws(dtype: torch.dtype) -> None:
    compiled = _every_op()
    k, b = compiled.rank.shape[0], 24
    one_op = _draws(compiled, torch.zeros(b, dtype=torch.int64), seed=0)
    many_ops = _draws(compiled, torch.arange(b) % k, seed=1)
    x0, x1 = _images(dtype, 0), _images(dtype, 1)
    run_static(compiled, x0, one_op, torch.Generator())  # fills the ops' constant caches
    first = _record(lambda: run_static(compiled, x0, one_op, torch.Generator()))
    other = _record(lambda: run_static(compiled, x1, many_ops, torch.Generator()))
    assert len(first) == len(other) > 100
    assert first == other  # the same operations, in the same order, with the same shapes
    # The grouped path does not have this property: its work follows the draws.
    grouped_one = _record(lambda: _grouped(compiled, x0, one_op))
    grouped_many = _record(lambda: _grouped(compiled, x0, many_ops))
    assert len(grouped_one) != len(grouped_many)


def _grouped(compiled: CompiledPolicy, x: torch.Tensor, draws: Draws) -> torch.Tensor:
    return _run_grouped(compiled, x.clone(), draws, torch.Generator())  # float: in place


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_static_call_makes_no_host_synchronization(dtype: torch.dtype, interpolation: str) -> None:
    compiled = _every_op(interpolation)
    draws = draw(compiled, 24, torch.Generator().manual_seed(0), torch.device("cpu"))
    images = _images(dtype, 0)
    calls = _record(lambda: run_static(compiled, images, draws, torch.Generator()))
    assert not [name for name, _ in calls if name.startswith(SYNCING)]
    # A whole uint8 call too, draws included (float images cost one check of their range).
    if dtype == torch.uint8:
        calls = _record(lambda: apply(compiled, images, torch.Generator(), path="static"))
        assert not [name for name, _ in calls if name.startswith(SYNCING)]
    # The recorder sees the grouped path's synchronization (it sizes its groups on the host).
    calls = _record(lambda: _grouped(compiled, images, draws))
    assert [name for name, _ in calls if name.startswith(SYNCING)]


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_static_call_runs_on_the_meta_device(dtype: torch.dtype, interpolation: str) -> None:
    """Meta tensors have shapes and no data: reading a value or a data-dependent shape fails."""
    compiled = _every_op(interpolation).to("meta")
    images = torch.empty(24, 3, 11, 13, dtype=dtype, device="meta")
    draws = _draws(compiled, torch.zeros(24, dtype=torch.int64), seed=0)
    draws = Draws(draws.choice.to("meta"), draws.uniforms.to("meta"))
    out = run_static(compiled, images, draws, torch.Generator())
    assert out.shape == images.shape and out.dtype == dtype and out.is_meta
    if dtype == torch.uint8:  # the whole call, as a policy makes it (auto: static off the CPU)
        assert apply(compiled, images, torch.Generator()).is_meta
    with pytest.raises((NotImplementedError, RuntimeError)):  # the grouped path reads values
        apply(compiled, images, torch.Generator(), path="grouped")


@pytest.mark.filterwarnings(LRU_WARNING)
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_static_call_compiles_whole(dtype: torch.dtype) -> None:
    """``fullgraph=True``: no graph break. The ``aot_eager`` backend traces the whole call to
    one ATen graph without compiling C++ (inductor's CPU code generation: the slow test)."""
    _compiles_whole(dtype, "aot_eager", atol=0.0)


@pytest.mark.slow
@pytest.mark.filterwarnings(LRU_WARNING)
def test_static_call_compiles_whole_with_inductor() -> None:
    _compiles_whole(torch.float32, "inductor", atol=1e-5)


def _compiles_whole(dtype: torch.dtype, backend: str, atol: float) -> None:
    compiled = _trivialaugment()
    torch._dynamo.reset()
    try:
        fn = torch.compile(run_static, fullgraph=True, backend=backend)
        for seed in (0, 1):
            images = _images(dtype, seed)
            draws = draw(compiled, 24, torch.Generator().manual_seed(seed), torch.device("cpu"))
            expected = run_static(compiled, images, draws)
            out = fn(compiled, images, draws)
            if dtype == torch.uint8:
                assert torch.equal(out, expected)
            else:
                torch.testing.assert_close(out, expected, atol=atol, rtol=0)
    finally:
        torch._dynamo.reset()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8])
def test_static_call_captures_in_a_cuda_graph(dtype: torch.dtype) -> None:
    device = torch.device("cuda")
    compiled = _trivialaugment().to(device)
    images = _images(dtype, 0, b=64).to(device)

    def draws_for(seed: int) -> Draws:
        return draw(compiled, 64, torch.Generator().manual_seed(seed), device)

    static_draws = draws_for(0)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: caches and allocations outside the capture
        for _ in range(2):
            run_static(compiled, images, static_draws)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = run_static(compiled, images, static_draws)
    for seed in (1, 2):
        fresh = draws_for(seed)
        static_draws.choice.copy_(fresh.choice)
        static_draws.uniforms.copy_(fresh.uniforms)
        graph.replay()
        expected = run_static(compiled, images, fresh)
        if dtype == torch.uint8:
            assert torch.equal(out, expected)
        else:
            torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
