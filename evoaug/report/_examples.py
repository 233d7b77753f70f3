"""A small synthetic run directory, for examples, docs and tests of the report.

The search files are written by evoaug's own writers from a real (tiny) :class:`evoaug.Search`
fed with made-up objective values; the predictions follow the documented CSV contract.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from evoaug.genome import GenomeSpace
from evoaug.search import (
    HistoryWriter,
    Knee,
    Search,
    history_record,
    write_best_policy,
    write_pareto,
)

__all__ = ["example_run"]

_OPS = ("Identity", "Invert", "Rotate", "Brightness", "Contrast", "ShearX")


def example_run(
    root: str | Path,
    *,
    group_names: Sequence[str] = ("majority", "minority"),
    accuracy: Sequence[float] = (0.95, 0.8),
    group_sizes: Sequence[int] = (300, 100),
    num_classes: int = 10,
    generations: int = 3,
    seed: int = 0,
    samples: bool = True,
) -> Path:
    """Write ``root/<log folder>/evoaug`` with every file a run produces; return its path.

    Args:
        root: Where to create ``version_0/evoaug`` (``version_1``, ... if taken).
        group_names: Names of the groups (``sensitive_attribute`` "tone").
        accuracy: Expected test accuracy per group.
        group_sizes: Test samples per group.
        num_classes: Number of classes (2 makes a binary task).
        generations: Search generations to record (0: an empty history).
        seed: Seed of everything drawn.
        samples: Also write ``samples.pt`` (8 probe images per group).

    """
    root = Path(root)
    version = 0
    while (root / f"version_{version}").exists():
        version += 1
    run_dir = root / f"version_{version}" / "evoaug"
    run_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    objectives = ("accuracy", "fairness", "diversity")
    class_names = [f"class {c}" for c in range(num_classes)]
    _predictions(run_dir, rng, accuracy, group_sizes, num_classes)
    dataset = {
        "dataset_name": "example",
        "num_classes": num_classes,
        "class_names": class_names,
        "group_names": list(group_names),
        "sensitive_attribute": "tone",
    }
    meta = {
        "format_version": 1,
        "columns": ["index", "y_true", "y_pred", "group", "confidence"],
        "num_samples": int(sum(group_sizes)),
        "num_classes": num_classes,
        "class_names": class_names,
        "groups_source": "sensitive attribute",
        "group_names": list(group_names),
        "sensitive_attribute": "tone",
        "dataset": dataset,
        "model": "small-cnn",
    }
    (run_dir / "test_meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    info = {
        "evoaug": {"objectives": list(objectives), "selection": "Knee()", "seed": seed,
                   "population_size": 6},
        "schedule": {"description": f"{generations} generations"},
        "dataset": dataset,
        "model": "Classifier",
        "groups_source": "sensitive attribute",
        "command": "evoaug fit --config recipes/example.yaml",
        "versions": {"evoaug": "0.1.0.dev0"},
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    _search(run_dir, rng, objectives, generations, seed)
    if samples:
        images = torch.zeros(8 * len(group_names), 1, 8, 8, dtype=torch.uint8)
        images[:, :, 2:6, 3:5] = 200
        torch.save(
            {
                "images": images,
                "labels": torch.arange(len(images)) % num_classes,
                "groups": torch.arange(len(group_names)).repeat_interleave(8),
            },
            run_dir / "samples.pt",
        )
    return run_dir


def _predictions(
    run_dir: Path,
    rng: np.random.Generator,
    accuracy: Sequence[float],
    sizes: Sequence[int],
    num_classes: int,
) -> None:
    lines = ["index,y_true,y_pred,group,confidence"]
    index = 0
    for group, (acc, size) in enumerate(zip(accuracy, sizes, strict=True)):
        for _ in range(size):
            y = int(rng.integers(num_classes))
            wrong = (y + 1 + int(rng.integers(num_classes - 1))) % num_classes
            pred = y if rng.random() < acc else wrong
            lines.append(f"{index},{y},{pred},{group},{rng.uniform(0.3, 1.0):.6f}")
            index += 1
    (run_dir / "test_predictions.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _search(
    run_dir: Path,
    rng: np.random.Generator,
    objectives: Sequence[str],
    generations: int,
    seed: int,
) -> None:
    space = GenomeSpace(_OPS, n_subpolicies=2, n_genes=2)
    search = Search(space, objectives, population_size=6, seed=seed)
    writer = HistoryWriter(run_dir)
    (run_dir / "history.jsonl").touch()  # an empty history when generations == 0
    timeline = []
    for generation in range(generations):
        candidates = search.ask()
        results = []
        for c in candidates:
            base = 0.5 + 0.1 * generation + 0.1 * float(rng.random())
            results.append(
                {"accuracy": base, "fairness": base - 0.2 * float(c.genome[2]),
                 "diversity": float(c.genome[2])}
            )  # fmt: skip
        search.tell(results)
        writer.append(
            [
                history_record(generation=generation, epoch=generation + 1, rank=0, candidate=c,
                               objectives=r, failure=None, seconds=0.1)
                for c, r in zip(candidates, results, strict=True)
            ]
        )  # fmt: skip
        front = search.pareto_front()
        policy, values = front[Knee().select(front)]
        write_pareto(run_dir / "pareto.yaml", front)
        write_best_policy(run_dir / "best_policy.yaml", policy, values)
        timeline.append(
            {"epoch": generation + 1, "generation": generation + 1, "policy": policy.to_dict(),
             "objectives": values, "hypervolume": search.hypervolume_history[-1]}
        )  # fmt: skip
    (run_dir / "timeline.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in timeline), encoding="utf-8"
    )
