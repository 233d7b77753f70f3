"""Over 30 generations, resident memory after the first generation grows by less than 5 %.

A reduced run of ``bench/memory.py`` (population 4 instead of 8): a real fit with
``EvoAugCallback(every_n_epochs=1)`` for 31 epochs, RSS read after every generation.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "memory.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_memory", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_rss_reader_sees_an_allocation() -> None:
    bench = _bench()
    before = bench.rss_bytes()
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    assert bench.rss_bytes() - before > 32 * 1024 * 1024
    del block


@pytest.mark.slow
def test_thirty_generations_grow_resident_memory_by_less_than_5_percent(tmp_path: Path) -> None:
    result = _bench().measure_callback(generations=30, population=4, root=tmp_path)
    assert len(result.rss) == 30
    assert result.growth < 0.05, result.row()
    print(result.row())
