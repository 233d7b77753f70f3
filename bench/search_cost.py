"""Wall time of one generation, in training-step equivalents (issue 3).

One generation = `Evaluator.evaluate` of P candidate policies with a k-step look-ahead at default
settings. Its cost is expressed as generation time over the median time of one plain training
step (forward, backward, SGD step) of the same model at the same batch size; the goal is at most
1.25 * P * k step-equivalents (everything beyond the look-ahead steps themselves, i.e.
augmentation, copying, BatchNorm recalibration and scoring, costs at most 25% more).

    python bench/search_cost.py --write-docs
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    DOCS_PAGE,
    command_line,
    machine_info,
    machine_markdown,
    markdown_table,
    write_docs_section,
)

from evoaug import GenomeSpace
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe, stratified_probe
from evoaug.models import ResNet18, SmallCNN


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step_time(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    times = []
    for i in range(repeats + 3):
        _sync(x.device)
        start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(x.device)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


LOOKAHEAD = {"one by one": False, "vectorized": True}

# --models choices: (table name, model factory, image shape) per row.
MODELS: dict[str, list[tuple[str, Callable[[], torch.nn.Module], tuple[int, int, int]]]] = {
    "small": [
        ("small CNN, digits-sized 1x16x16", lambda: SmallCNN(1, 10), (1, 16, 16)),
        ("small CNN, 3x32x32", lambda: SmallCNN(3, 10), (3, 32, 32)),
    ],
    "resnet18": [("ResNet-18 (CIFAR stem), 3x32x32", lambda: ResNet18(3, 10), (3, 32, 32))],
}


def measure(
    name: str, model: torch.nn.Module, shape: tuple[int, int, int], args: argparse.Namespace
) -> list[list[str]]:
    g = torch.Generator().manual_seed(0)
    n = 1024
    device = torch.device(args.device)
    model = model.to(device)
    images = torch.rand(n, *shape, generator=g).to(device)
    labels = torch.randint(0, 10, (n,), generator=g).to(device)
    groups = labels % 2
    train = Probe(images[:512], labels[:512])
    val = stratified_probe(images[512:], labels[512:], groups[512:], size=256, generator=g)
    space = GenomeSpace()
    rng = np.random.default_rng(0)
    policies = [space.decode(space.random(rng)) for _ in range(args.population)]
    spec = OptimizerSpec("sgd", 0.01, momentum=0.9)
    modes = list(LOOKAHEAD) if args.lookahead == "both" else [args.lookahead]
    evaluators = {
        mode: Evaluator(
            lookahead_steps=args.k, batch_size=args.batch_size, vectorize=LOOKAHEAD[mode]
        )
        for mode in modes
    }
    for evaluator in evaluators.values():  # warm-up
        evaluator.evaluate(model, F.cross_entropy, spec, train, val, policies[:2], seed=0)
    gen_times: dict[str, list[float]] = {mode: [] for mode in modes}
    ratios: dict[str, list[float]] = {mode: [] for mode in modes}
    step_times: list[float] = []
    x, y = images[: args.batch_size], labels[: args.batch_size]

    def step_time() -> float:  # on a copy: the generations all see the same model
        return _step_time(copy.deepcopy(model), x, y, 20)

    # Each generation is priced against training steps timed just before and after it, so
    # drift in machine load (large on shared cores) hits both sides of the ratio alike.
    before = step_time()
    for r in range(args.repeats):
        for mode, evaluator in evaluators.items():
            _sync(device)
            start = time.perf_counter()
            evaluator.evaluate(model, F.cross_entropy, spec, train, val, policies, seed=r)
            _sync(device)
            seconds = time.perf_counter() - start
            after = step_time()
            gen_times[mode].append(seconds)
            ratios[mode].append(seconds / ((before + after) / 2))
            step_times += [before, after]
            before = after
    step = statistics.median(step_times)
    budget = args.population * args.k
    rows = []
    for mode in modes:
        generation = statistics.median(gen_times[mode])
        equivalents = statistics.median(ratios[mode])
        rows.append([
            name,
            mode,
            f"{args.population} x {args.k} steps, batch {args.batch_size}",
            f"{generation:.2f}",
            f"{step * 1000:.1f}",
            f"{equivalents:.0f}",
            f"{equivalents / budget:.2f}x",
            f"{min(ratios[mode]) / budget:.2f}-{max(ratios[mode]) / budget:.2f}x",
            "met" if equivalents <= 1.25 * budget else "not met",
        ])  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-resnet", action="store_true", help="same as --models small")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=tuple(MODELS),
        default=None,
        help="which models to measure (default: all; ResNet-18 takes ~7 min a generation on "
        "2 CPU cores)",
    )
    parser.add_argument(
        "--section",
        default=None,
        help="docs section to write (default: search_cost, or search_cost_<device>)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--lookahead",
        choices=(*LOOKAHEAD, "both"),
        default="both",
        help="the evaluator's look-ahead path (Evaluator(vectorize=...)); default: both",
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("`--device cuda` needs a CUDA build of torch and a visible GPU; none found")
    models = args.models or (["small"] if args.skip_resnet else list(MODELS))
    info = machine_info()
    rows = []
    for key in models:
        for name, build, shape in MODELS[key]:
            rows += measure(name, build(), shape, args)
    table = markdown_table(
        ["model", "look-ahead", "generation", "seconds (median)", "ms per training step",
         "step-equivalents", "vs P*k", "range over generations", "goal <= 1.25 P*k"], rows,
    )  # fmt: skip
    text = "\n\n".join(
        [
            f"Measured with `{command_line(__file__, sys.argv[1:] if argv is None else argv)}`"
            f" (medians of {args.repeats} generations; step-equivalents are the median over"
            " generations of generation time over the median of 20 training steps timed just"
            " before and after it; default evaluator settings: BatchNorm "
            "recalibration on 128 clean images, validation probe 256 stratified by group, "
            'difficulty on 128 and diversity on 64 images). Look-ahead "one by one" trains '
            "each candidate alone (`Evaluator(vectorize=False)`, the default on the CPU); "
            '"vectorized" trains all candidates as one batched model (`vectorize=True`, the '
            "default on a GPU).",
            machine_markdown(info),
            table,
        ]
    )
    print(text)
    if args.write_docs:
        section = args.section or (
            "search_cost" if args.device == "cpu" else f"search_cost_{args.device}"
        )
        write_docs_section(args.docs, section, text)


if __name__ == "__main__":
    main()
