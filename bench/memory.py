"""Resident memory over a long search: does anything grow with the number of generations?

Runs G generations (default 30) on a tiny CNN and 8x8 digits on the CPU, two ways:

- ``search``: what the callback does per generation, without Lightning: ``Search.ask``, the
  ``Evaluator`` on the live model, ``Search.tell``, ``HistoryWriter.append``, ``write_pareto`` and
  ``write_best_policy``, and a few training steps of the live model in between;
- ``callback``: a real ``Trainer.fit`` with ``EvoAugCallback(every_n_epochs=1)`` for G + 1 epochs.

It prints the resident set size (RSS, from ``/proc/self/statm``) after generation 1 and after
generation G, and the growth in percent. The reliability target is growth below 5 %
(``tests/reliability/test_memory.py`` runs a reduced version and asserts it).

    python bench/memory.py                      # both modes, 30 generations
    python bench/memory.py --mode callback --generations 50 --population 8
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch
import torch.nn.functional as F

__all__ = ["MemoryResult", "measure_callback", "measure_search", "rss_bytes"]


def rss_bytes() -> int:
    """The current resident set size of this process, in bytes (Linux ``/proc``; else psutil)."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        resident_pages = int(statm.read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    import psutil  # not a dependency: only needed off Linux

    return int(psutil.Process().memory_info().rss)


def _settled_rss() -> int:
    gc.collect()
    return rss_bytes()


@dataclass(frozen=True)
class MemoryResult:
    """RSS after each generation, in bytes (index 0: after generation 1)."""

    mode: str
    population: int
    rss: tuple[int, ...]

    @property
    def growth(self) -> float:
        """Growth from after generation 1 to after the last one, as a fraction."""
        return (self.rss[-1] - self.rss[0]) / self.rss[0]

    def row(self) -> str:
        mb = 1024 * 1024
        return (
            f"| {self.mode} | {len(self.rss)} | {self.population} | {self.rss[0] / mb:.1f} | "
            f"{self.rss[-1] / mb:.1f} | {max(self.rss) / mb:.1f} | {100 * self.growth:+.2f} % |"
        )


HEADER = (
    "| mode | generations | population | RSS after gen 1 (MiB) | RSS after last gen (MiB) "
    "| peak (MiB) | growth |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(data.target, dtype=torch.int64)


def _tiny_cnn() -> torch.nn.Module:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def measure_search(
    generations: int = 30, population: int = 8, run_dir: Path | None = None
) -> MemoryResult:
    """Search + Evaluator + history files, generation after generation, on a training model."""
    from evoaug import GenomeSpace
    from evoaug.evaluate import Evaluator, OptimizerSpec, Probe, stratified_probe
    from evoaug.search import (
        HistoryWriter,
        Search,
        history_record,
        write_best_policy,
        write_pareto,
    )

    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="evoaug-memory-"))
    images, labels = _digits()
    g = torch.Generator().manual_seed(0)
    train = Probe(images[:256], labels[:256])
    val = stratified_probe(images[1000:], labels[1000:], labels[1000:], size=100, generator=g)
    torch.manual_seed(0)
    model = _tiny_cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    spec = OptimizerSpec.from_optimizer(optimizer)
    space = GenomeSpace(n_subpolicies=2, n_genes=2)
    objectives = ("accuracy", "difficulty", "diversity", "fairness")
    search = Search(space, objectives, population_size=population, seed=0)
    evaluator = Evaluator(
        objectives=objectives,
        lookahead_steps=3,
        batch_size=32,
        recalibration_size=64,
        difficulty_size=64,
        diversity_size=32,
    )
    writer = HistoryWriter(run_dir)
    rss: list[int] = []
    for generation in range(generations):
        for _ in range(4):  # the live model trains between generations
            index = torch.randint(0, 1000, (64,), generator=g)
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        candidates = search.ask()
        policies = [c.policy for c in candidates]
        results = evaluator.evaluate(
            model, F.cross_entropy, spec, train, val, policies, seed=generation
        )
        search.tell([r.objectives if r.ok else None for r in results])
        writer.append(
            [
                history_record(
                    generation=generation,
                    epoch=generation,
                    rank=0,
                    candidate=c,
                    objectives=r.objectives,
                    failure=r.failure,
                    seconds=r.seconds,
                )
                for c, r in zip(candidates, results, strict=True)
            ]
        )
        front = search.pareto_front()
        write_pareto(run_dir / "pareto.yaml", front)
        if front:
            write_best_policy(run_dir / "best_policy.yaml", front[0][0], front[0][1])
        rss.append(_settled_rss())
    return MemoryResult("search", population, tuple(rss))


def measure_callback(
    generations: int = 30, population: int = 8, root: Path | None = None
) -> MemoryResult:
    """A real fit with ``EvoAugCallback(every_n_epochs=1)`` for ``generations + 1`` epochs."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import Callback

    from evoaug import EvoAugCallback
    from evoaug.data import DigitsDataModule
    from evoaug.models import Classifier

    rss: list[int] = []

    class _Record(Callback):
        def __init__(self, search: EvoAugCallback) -> None:
            self.search = search

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            if self.search.generation > len(rss):  # runs after the callback's generation
                rss.append(_settled_rss())

    root = root or Path(tempfile.mkdtemp(prefix="evoaug-memory-"))
    pl.seed_everything(0, verbose=False)
    cb = EvoAugCallback(
        population_size=population,
        every_n_epochs=1,
        warmup_epochs=1,
        min_generations=0,
        lookahead_steps=3,
        lookahead_batch_size=16,
        train_probe_size=64,
        val_probe_size=40,
        n_subpolicies=2,
        n_genes=2,
        normalize="datamodule",
        seed=0,
    )
    trainer = pl.Trainer(
        max_epochs=generations + 1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
        callbacks=[cb, _Record(cb)],
    )
    model = Classifier(model="small-cnn", model_kwargs={"width": 4}, lr=0.05, scheduler="none")
    data = DigitsDataModule(batch_size=32, image_size=8, limit_train=64, limit_test=32)
    trainer.fit(model, datamodule=data)
    return MemoryResult("callback", population, tuple(rss))


MODES: dict[str, Callable[..., MemoryResult]] = {
    "search": measure_search,
    "callback": measure_callback,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both")
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    modes = list(MODES) if args.mode == "both" else [args.mode]
    results = [MODES[m](generations=args.generations, population=args.population) for m in modes]
    print(HEADER)
    for result in results:
        print(result.row())
    worst = max(r.growth for r in results)
    print(f"\nlargest growth after generation 1: {100 * worst:+.2f} % (target: below 5 %)")
    return 0 if worst < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
