"""One generation's wall time with 1, 2, ... DDP ranks on the CPU (issue 7).

Under DDP the callback shards a generation's candidates over the ranks, each rank scores its
slice and the results are all-gathered. This script fits the small CNN on digits with
``every_n_epochs=1`` (one generation per epoch) under ``strategy="ddp"`` (gloo) with each number
of ranks in ``--ranks``, and times the generations from outside the callback. The cores are split
evenly: with R ranks each rank gets ``cores // R`` torch threads, so every row uses the same
machine and the speed-up is what sharding buys, not extra cores.

    python bench/scaling.py --write-docs
    python bench/scaling.py --ranks 1 2 4 --population 32     # on a machine with more cores

Each configuration runs in its own process tree (Lightning starts the other ranks by running this
script again with the same arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    DOCS_PAGE,
    command_line,
    machine_info,
    machine_markdown,
    markdown_table,
    write_docs_section,
)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker(args: argparse.Namespace) -> None:
    """Fit under DDP with ``args.ranks`` ranks; rank 0 writes the generation times to ``--out``."""
    import pytorch_lightning as pl
    import torch

    from evoaug import EvoAugCallback
    from evoaug.data import DigitsDataModule
    from evoaug.models import Classifier

    (ranks,) = args.ranks
    torch.set_num_threads(max(1, _cores() // ranks))
    warnings.filterwarnings("ignore")

    class Clock(pl.Callback):
        """Placed before and after the EvoAugCallback: the gap is the generation's time."""

        def __init__(self, marks: list[tuple[float, int]]) -> None:
            self.marks = marks

        def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.marks.append((time.perf_counter(), callback.generation))

    starts: list[tuple[float, int]] = []
    ends: list[tuple[float, int]] = []
    callback = EvoAugCallback(
        every_n_epochs=1,
        warmup_epochs=1,
        population_size=args.population,
        lookahead_steps=args.lookahead_steps,
        normalize="datamodule",
        seed=0,
    )
    pl.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            max_epochs=args.generations + 2, accelerator="cpu", devices=ranks,
            strategy="ddp" if ranks > 1 else "auto",
            callbacks=[Clock(starts), callback, Clock(ends)],
            logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=tmp,
        )  # fmt: skip
        trainer.fit(
            Classifier(model="small-cnn", lr=0.05),
            datamodule=DigitsDataModule(image_size=args.image_size, batch_size=64, seed=0),
        )
    if trainer.is_global_zero:
        seconds = [  # epochs that ran a generation; the first pays for warm-up (probes, caches)
            end - start
            for (start, before), (end, after) in zip(starts, ends, strict=True)
            if after > before
        ][1:]
        record = {
            "ranks": ranks,
            "threads_per_rank": torch.get_num_threads(),
            "generations": callback.generation,
            "seconds": seconds,
        }
        Path(args.out).write_text(json.dumps(record), encoding="utf-8")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--lookahead-steps", type=int, default=20)
    parser.add_argument("--generations", type=int, default=4, help="timed: all but the first")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if any(r < 1 for r in args.ranks) or args.generations < 2:
        parser.error("--ranks must be >= 1 and --generations >= 2")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run one process tree per rank count and print the table."""
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    info = machine_info()
    info["cores"] = str(_cores())
    records: list[dict[str, Any]] = []
    for ranks in args.ranks:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "times.json"
            command = [
                sys.executable, __file__, "--worker", "--out", str(out), "--ranks", str(ranks),
                "--population", str(args.population),
                "--lookahead-steps", str(args.lookahead_steps),
                "--generations", str(args.generations), "--image-size", str(args.image_size),
            ]  # fmt: skip
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
            if proc.returncode != 0 or not out.exists():
                raise SystemExit(f"{ranks} rank(s) failed:\n{proc.stderr[-3000:]}")
            records.append(json.loads(out.read_text(encoding="utf-8")))
        print(f"{ranks} rank(s): {records[-1]['seconds']}", flush=True)
    base = statistics.median(records[0]["seconds"])
    rows = [
        [
            r["ranks"], r["threads_per_rank"], len(r["seconds"]),
            f"{statistics.median(r['seconds']):.2f}",
            f"{base / statistics.median(r['seconds']):.2f}x",
        ]
        for r in records
    ]  # fmt: skip
    table = markdown_table(
        ["DDP ranks (gloo)", "torch threads per rank", "generations timed",
         "generation s (median)", f"speed-up vs {records[0]['ranks']} rank(s)"],
        rows,
    )  # fmt: skip
    argv_text = list(sys.argv[1:] if argv is None else argv)
    text = "\n\n".join(
        [
            f"Measured with `{command_line(__file__, argv_text)}`: digits 1x{args.image_size}x"
            f"{args.image_size}, small CNN, {args.population} candidates x "
            f"{args.lookahead_steps} look-ahead steps per generation.",
            machine_markdown(info),
            table,
        ]
    )
    print(text)
    if args.write_docs:
        write_docs_section(args.docs, "scaling", text)


if __name__ == "__main__":
    main()
