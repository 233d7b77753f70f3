"""Wall time of `fit` with EvoAugCallback (defaults) over `fit` with fixed TrivialAugment.

Both arms use the same pipeline (EvoAugCallback in batch mode; the baseline with `search=False`
and `initial_policy="trivialaugment"`), model, data, epochs and seed; only the search differs.
Repeats of the two arms are interleaved; the table reports medians. Every fit runs in its own
process with a time limit (`--fit-timeout`): a fit that hangs is stopped after printing every
thread's stack (faulthandler), counted in the table as timed out, and the other fits go on.

    python bench/callback_overhead.py --dataset digits --epochs 12 --repeats 3
    python bench/callback_overhead.py --dataset digits --epochs 12 --budget 0.45 \
        --warmup-epochs 2  # the fit of `make run` (recipes/digits.yaml)
    python bench/callback_overhead.py --dataset cifar10 \
        --cifar-tar ../shared/data/cifar10_jpg.tar.gz --limit-train 10000 --epochs 20 \
        --model resnet18 --repeats 3 --write-docs

The CIFAR-10 archive is extracted once into `--cache` (default ~/.cache/evoaug-bench), never into
the repository.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

import pytorch_lightning as pl

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    DOCS_PAGE,
    command_line,
    extract_archive,
    machine_info,
    machine_markdown,
    markdown_table,
    write_docs_section,
)

from evoaug import EvoAugCallback
from evoaug.data import DigitsDataModule, ImageFolderDataModule
from evoaug.models import Classifier


def _datamodule(args: argparse.Namespace) -> pl.LightningDataModule:
    if args.dataset == "digits":
        return DigitsDataModule(batch_size=args.batch_size, image_size=args.image_size, seed=0)
    root = extract_archive(args.cifar_tar, args.cache, contains="train")
    return ImageFolderDataModule(
        root=str(root), batch_size=args.batch_size, limit_train=args.limit_train,
        limit_test=args.limit_test, image_size=32, seed=0,
    )  # fmt: skip


def _fit(args: argparse.Namespace, search: bool) -> dict[str, float]:
    """One fit: its wall seconds, generations, and the callback's own measurements (the
    seconds its training epochs took and the seconds its generations took)."""
    pl.seed_everything(0, verbose=False)
    dm = _datamodule(args)
    searched = {"search_budget": args.budget} if args.budget is not None else {}
    callback = EvoAugCallback(
        search=search,
        initial_policy="identity" if search else "trivialaugment",
        normalize="datamodule",
        warmup_epochs=args.warmup_epochs,
        seed=0,
        **(searched if search else {}),
    )
    model = Classifier(model=args.model, lr=args.lr, scheduler="cosine")
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            max_epochs=args.epochs, accelerator=args.accelerator, devices=1, logger=False,
            precision=args.precision,
            callbacks=[callback],
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            default_root_dir=tmp, num_sanity_val_steps=0, log_every_n_steps=50,
        )  # fmt: skip
        start = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "generations": callback.generation,
        "epoch_seconds": sum(callback.meter.epoch_seconds),
        "search_seconds": sum(callback.meter.generation_seconds),
    }


def _fit_in_process(argv: list[str], search: bool, timeout: float) -> dict[str, float] | None:
    """One fit in a child process; ``None`` when it ran past ``timeout`` (stacks printed)."""
    command = [sys.executable, __file__, *argv, "--single", "search" if search else "fixed"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        tail = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
        print(out[-4000:], tail[-20000:], sep="\n", flush=True)
        return None
    print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", flush=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {k: float(v) for k, v in json.loads(line[len("RESULT ") :]).items()}
    raise RuntimeError(f"fit (search={search}) exited {done.returncode} without a result")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("digits", "cifar10"), default="digits")
    parser.add_argument("--cifar-tar", default="../shared/data/cifar10_jpg.tar.gz")
    parser.add_argument("--cache", default="~/.cache/evoaug-bench")
    parser.add_argument("--model", default="small-cnn")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--limit-test", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--budget", type=float, default=None,
        help="the evoaug arm's search_budget (default: the callback's); recipes/digits.yaml, "
        "which `make run` fits, sets 0.45",
    )  # fmt: skip
    parser.add_argument("--warmup-epochs", type=int, default=1, help="the callback's")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument(
        "--fit-timeout", type=float, default=600.0, help="seconds before a fit counts as hung"
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE)
    parser.add_argument("--single", choices=("fixed", "search"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:  # child process: one fit, its result on stdout
        faulthandler.dump_traceback_later(max(args.fit_timeout - 10, 1), exit=False)
        print("RESULT " + json.dumps(_fit(args, args.single == "search")), flush=True)
        return
    child_argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--write-docs"]
    info = machine_info()
    times: dict[bool, list[float]] = {False: [], True: []}
    hung: dict[bool, int] = {False: 0, True: 0}
    generations: list[int] = []
    pairs: list[float] = []  # each repeat's search fit over the fixed fit just before it
    shares: list[float] = []  # the search's seconds over its own fit's epochs
    for _ in range(args.repeats):  # interleaved: a busy moment hits both arms
        fixed: float | None = None
        for search in (False, True):
            result = _fit_in_process(child_argv, search, args.fit_timeout)
            if result is None:
                hung[search] += 1
                print(f"search={search}: timed out after {args.fit_timeout:.0f}s", flush=True)
                continue
            seconds = result["seconds"]
            times[search].append(seconds)
            if not search:
                fixed = seconds
            else:
                generations.append(int(result["generations"]))
                shares.append(result["search_seconds"] / max(result["epoch_seconds"], 1e-9))
                if fixed is not None:
                    pairs.append(seconds / fixed)
            print(f"search={search}: {seconds:.1f}s", flush=True)
    if not times[False] or not times[True]:
        raise SystemExit(f"no completed fit for one of the arms: {times}, timed out: {hung}")
    base, evo = statistics.median(times[False]), statistics.median(times[True])
    setting = (
        f"{args.dataset}, {args.model}, {args.epochs} epochs, batch {args.batch_size}, "
        f"{args.accelerator}"
        + (f", {args.limit_train} training images" if args.dataset == "cifar10" else "")
    )

    def runs(search: bool) -> str:
        done = ", ".join(f"{t:.1f}" for t in times[search])
        return done + (f"; {hung[search]} timed out" if hung[search] else "")

    evo_arm = f"evoaug (search_budget={args.budget:g})" if args.budget else "evoaug (defaults)"
    paired = f"{statistics.median(pairs):.2f}x" if pairs else "-"
    share = ", ".join(f"{100 * s:.0f}%" for s in shares)
    rows = [
        [setting, "fixed trivialaugment", f"{base:.1f}", runs(False), "1.00x", "-", "-", "0"],
        [setting, evo_arm, f"{evo:.1f}", runs(True), f"{evo / base:.2f}x", paired, share,
         ", ".join(map(str, generations))],
    ]  # fmt: skip
    table = markdown_table(
        ["setting", "arm", "fit seconds (median)", "each fit", "vs trivialaugment (medians)",
         "vs trivialaugment (median of paired repeats)", "search / its fit's epochs",
         "generations"], rows,
    )  # fmt: skip
    text = "\n\n".join(
        [
            f"Measured with `{command_line(__file__, sys.argv[1:] if argv is None else argv)}`"
            f" ({args.repeats} interleaved repeats).",
            machine_markdown(info),
            table,
        ]
    )
    print(text)
    if args.write_docs:
        # The CIFAR-10 section holds the GPU figure the goal is about; CPU runs get their own.
        cpu_cifar = args.dataset == "cifar10" and args.accelerator == "cpu"
        section = f"callback_overhead_{args.dataset}" + ("_cpu" if cpu_cifar else "")
        write_docs_section(args.docs, section, text)


if __name__ == "__main__":
    main()
