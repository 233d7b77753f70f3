"""Offline-search fixtures: a tiny digits recipe, a counting synthetic lower level, the optional
cluster extras and the worker-side test module."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from evoaug import GenomeSpace, Policy
from evoaug.offline import SyntheticObjectives

TINY_RECIPE = """\
seed_everything: 0
trainer:
  max_epochs: 30
  accelerator: cpu
  devices: 1
  deterministic: true
  limit_train_batches: 6
  num_sanity_val_steps: 0
  logger:
    class_path: pytorch_lightning.loggers.CSVLogger
    init_args: {{save_dir: {root}/never-written, name: digits}}
  callbacks:
    - class_path: evoaug.EvoAugCallback
      init_args:
        objectives: [accuracy, difficulty, diversity, fairness]
        population_size: 4
        train_probe_size: 96
        val_probe_size: 60
        n_subpolicies: 2
        n_genes: 1
        normalize: datamodule
        initial_presets: [identity]
        seed: 0
model:
  class_path: evoaug.models.Classifier
  init_args: {{model: small-cnn, optimizer: sgd, lr: 0.1}}
data:
  class_path: evoaug.data.DigitsDataModule
  init_args: {{batch_size: 32, image_size: 8}}
"""

SMALL_SPACE_OPS = ["Identity", "Invert", "Rotate", "Zoom", "Brightness", "Cutout"]


@pytest.fixture
def tiny_recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE.format(root=tmp_path))
    return path


@pytest.fixture
def small_space() -> GenomeSpace:
    return GenomeSpace(SMALL_SPACE_OPS, n_subpolicies=2, n_genes=1)


class CountingObjectives(SyntheticObjectives):
    """Synthetic lower level that remembers every policy it scored (serial runner only).

    ``interrupt_at``: raise KeyboardInterrupt on that call (1-based), like Ctrl-C mid-run.
    """

    def __init__(self, *args: Any, interrupt_at: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []
        self.interrupt_at = interrupt_at

    def __call__(self, policy: Policy, *, seed: int) -> dict[str, float]:
        if self.interrupt_at is not None and len(self.calls) + 1 == self.interrupt_at:
            self.interrupt_at = None
            raise KeyboardInterrupt
        self.calls.append(policy.to_json())
        return super().__call__(policy, seed=seed)


@pytest.fixture
def counting() -> type[CountingObjectives]:
    return CountingObjectives


REQUIRE_EXTRAS = "EVOAUG_REQUIRE_EXTRAS"
WORKER_TASKS = Path(__file__).parent / "importable"


def _import_extra(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        reason = f"{module} is not installed: pip install -e '.[{extra}]' ({err})"
    if os.environ.get(REQUIRE_EXTRAS) == "1":
        pytest.fail(f"{reason}; {REQUIRE_EXTRAS}=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def import_extra() -> Callable[[str, str], ModuleType]:
    """``import_extra(module, extra)``: the module of an optional extra (``evoaug[ray]``, ...).

    Without it the test skips, naming what to install; with ``EVOAUG_REQUIRE_EXTRAS=1`` (set by
    ``.ci/run``) it fails instead, so CI cannot skip the cluster tests silently.
    """
    return _import_extra


@pytest.fixture(scope="module")
def worker_tasks() -> Iterator[ModuleType]:
    """``tests/offline/importable/offline_test_tasks.py``, importable by name here and in every
    worker process started while the fixture lives (it is on ``sys.path`` and ``PYTHONPATH``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(WORKER_TASKS))
        patch.setenv("PYTHONPATH", str(WORKER_TASKS), prepend=os.pathsep)
        yield importlib.import_module("offline_test_tasks")
