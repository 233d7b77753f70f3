"""Images per second: evoaug's per-sample batched policies against torchvision and albumentations.

Every peer augments the same uint8 RGB images, as a DataLoader delivers them, in the same run;
the repeats are interleaved (see ``_common.interleaved_rates``) and the table reports medians.

Peers, for each image size:

- evoaug ``Policy.preset("trivialaugment")`` on the whole batch: every image draws its own op and
  magnitude. Measured on the uint8 batch (evoaug converts to float and back) and on the same batch
  already in float32 ``[0, 1]``; and on the uint8 batch with ``interpolation="nearest"``, the
  interpolation torchvision's ``TrivialAugmentWide`` uses by default (evoaug's default is
  bilinear), so that row compares like with like.
- evoaug with a 5x2 policy (5 sub-policies of 2 genes, decoded from a seeded random genome), the
  shape of policy a search produces; same two inputs.
- torchvision v2 ``TrivialAugmentWide`` per image in a Python loop: the per-sample peer.
- the same transform on the whole batch at once: one op and one magnitude for all images. Each of
  its timings covers ``--batch-calls`` calls so that the op mix averages out; evoaug's timings
  cover as many calls, so that the two batched methods are timed alike.
- albumentations per image (HxWxC uint8 numpy): ``Policy.to_albumentations()`` of the preset when
  it is available, else a hand-written ``OneOf`` of the equivalent transforms.

Run ``python bench/throughput.py --help`` for the options; ``--write-docs`` updates the
``throughput`` section of ``docs/benchmarks.md`` (``throughput_cuda`` with ``--device cuda``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from _common import (
    DOCS_PAGE,
    REPO_ROOT,
    CpuShare,
    command_line,
    interleaved_rates,
    machine_info,
    machine_markdown,
    markdown_table,
    without_output_options,
    write_docs_section,
)

if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing evoaug
    sys.path.insert(0, str(REPO_ROOT))

import evoaug

DEFAULT_BATCH = {32: 256, 224: 64}  # other sizes: 64
GOAL_PER_IMAGE = 5.0  # evoaug TA per-sample / torchvision per image, on 2 cores
GOAL_PER_BATCH = 0.5  # evoaug TA per-sample / torchvision per batch, on 2 cores

EVO_TA = "evoaug TA, per-sample, batched"
EVO_TA_NEAREST = "evoaug TA nearest, per-sample, batched"
EVO_5X2 = "evoaug 5x2 policy, per-sample, batched"
TV_IMAGE = "torchvision TrivialAugmentWide, per image"
TV_BATCH = "torchvision TrivialAugmentWide, per batch"
ALBU = "albumentations, per image"
UINT8, FLOAT = "uint8 in/out", "float32 in/out"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line; ``--quick`` fills in small defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224], metavar="SIDE")
    parser.add_argument(
        "--batch-size",
        type=int,
        nargs="+",
        default=None,
        metavar="B",
        help="one value for every size, or one per size (default: 256 at 32, 64 otherwise)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls (default 2)")
    parser.add_argument(
        "--batch-calls",
        type=int,
        default=None,
        help="calls per timing of the per-batch peer, to average its op draws (default 16)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 repeat, small batches: a smoke run, not figures"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch and OpenCV threads (default: theirs)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--write-docs", action="store_true", help="replace this run's section of --docs"
    )
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if any(s < 8 for s in args.sizes):
        parser.error(f"`--sizes` must be >= 8 pixels, got {args.sizes}")
    if args.batch_size is not None and len(args.batch_size) not in (1, len(args.sizes)):
        parser.error(
            f"`--batch-size` takes one value or one per size ({len(args.sizes)}), "
            f"got {args.batch_size}"
        )
    if args.batch_size is not None and min(args.batch_size) < 1:
        parser.error(f"`--batch-size` must be >= 1, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"`--threads` must be >= 1, got {args.threads}")
    quick = args.quick
    args.repeats = args.repeats if args.repeats is not None else (1 if quick else 5)
    args.warmup = args.warmup if args.warmup is not None else (1 if quick else 2)
    args.batch_calls = args.batch_calls if args.batch_calls is not None else (2 if quick else 16)
    for name in ("repeats", "batch_calls"):
        if getattr(args, name) < 1:
            parser.error(f"`--{name.replace('_', '-')}` must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"`--warmup` must be >= 0, got {args.warmup}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("`--device cuda` needs a CUDA build of torch and a visible GPU; none found")
    return args


def batch_sizes(args: argparse.Namespace) -> dict[int, int]:
    """``{image side: batch size}`` from ``--batch-size`` or the per-size defaults."""
    if args.batch_size is None:
        sizes = {s: DEFAULT_BATCH.get(s, 64) for s in args.sizes}
        return {s: min(b, 32) for s, b in sizes.items()} if args.quick else sizes
    values = args.batch_size * len(args.sizes) if len(args.batch_size) == 1 else args.batch_size
    return dict(zip(args.sizes, values, strict=True))


def five_by_two(seed: int) -> evoaug.Policy:
    """The 5x2 policy: a seeded random genome of 5 sub-policies of 2 genes, decoded."""
    space = evoaug.GenomeSpace(n_subpolicies=5, n_genes=2)
    policy = space.decode(np.random.default_rng(seed).random(space.dim))
    return evoaug.Policy(policy.sub_policies, name=f"random 5x2 (seed {seed})")


def albumentations_peer(
    size: int, seed: int, *, verbose: bool = True
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """Albumentations TrivialAugmentWide: evoaug's export when it works, else a hand-written one.

    Returns:
        A function of one HxWxC uint8 image, and a note on which variant was used.
    """
    import albumentations as A

    try:
        compose = evoaug.Policy.preset("trivialaugment", image_size=size).to_albumentations()
        compose.set_random_seed(seed)
        compose(image=np.zeros((32, 32, 3), np.uint8))
        note = '`Policy.preset("trivialaugment").to_albumentations()`'
    except Exception as err:  # the export is optional here: fall back, and say why
        reason = f"{type(err).__name__}: {str(err).split('. ')[0]}"
        if verbose:
            print(f"note: to_albumentations() failed ({reason}); using a hand-written equivalent")
        shear = float(np.degrees(np.arctan(0.99)))  # TrivialAugmentWide: tan(angle) up to 0.99
        compose = A.Compose(
            [
                A.OneOf(
                    [
                        A.NoOp(p=1.0),
                        A.Affine(shear={"x": (-shear, shear), "y": (0, 0)}, p=1.0),
                        A.Affine(shear={"x": (0, 0), "y": (-shear, shear)}, p=1.0),
                        A.Affine(translate_px={"x": (-32, 32), "y": (0, 0)}, p=1.0),
                        A.Affine(translate_px={"x": (0, 0), "y": (-32, 32)}, p=1.0),
                        A.Affine(rotate=(-135, 135), p=1.0),
                        A.ColorJitter(brightness=0.99, contrast=0, saturation=0, hue=0, p=1.0),
                        A.ColorJitter(brightness=0, contrast=0, saturation=0.99, hue=0, p=1.0),
                        A.ColorJitter(brightness=0, contrast=0.99, saturation=0, hue=0, p=1.0),
                        A.Sharpen(alpha=(0.0, 0.99), lightness=(1.0, 1.0), p=1.0),
                        A.Posterize(num_bits=(2, 8), p=1.0),
                        A.Solarize(threshold_range=(0.0, 1.0), p=1.0),
                        A.AutoContrast(method="pil", p=1.0),
                        A.Equalize(mode="pil", p=1.0),
                    ],
                    p=1.0,
                )
            ],
            seed=seed,
        )
        note = (
            "a hand-written `A.OneOf` of the 14 TrivialAugmentWide ops (p=1; `Sharpen` only"
            f" sharpens), because `to_albumentations()` raised {reason}"
        )

    def run(image: np.ndarray) -> np.ndarray:
        return compose(image=image)["image"]

    return run, note


def measure_size(
    size: int,
    batch: int,
    args: argparse.Namespace,
    policy_5x2: evoaug.Policy,
    albu: Callable[[np.ndarray], np.ndarray],
) -> list[tuple[str, float]]:
    """Time every peer at one image size; return ``[(method, median images/s)]``."""
    from torchvision.transforms import v2

    device = torch.device(args.device)
    images_gen = torch.Generator().manual_seed(args.seed)
    images = torch.randint(0, 256, (batch, 3, size, size), generator=images_gen, dtype=torch.uint8)
    images = images.to(device)
    images_float = images.float().div_(255.0)
    numpy_images = [np.ascontiguousarray(im) for im in images.cpu().permute(0, 2, 3, 1).numpy()]

    ta = evoaug.Policy.preset("trivialaugment", image_size=size)
    ta_nearest = evoaug.Policy.preset("trivialaugment", image_size=size, interpolation="nearest")
    gen = torch.Generator(device=device).manual_seed(args.seed)
    tv = v2.TrivialAugmentWide()

    def repeated(call: Callable[[], object]) -> Callable[[], None]:
        """``--batch-calls`` calls per timing, outputs dropped as they come (as in training)."""

        def run() -> None:
            for _ in range(args.batch_calls):
                call()

        return run

    def evo(policy: evoaug.Policy, x: torch.Tensor) -> Callable[[], object]:
        # As many calls per timing as the per-batch peer makes, so that both batched methods
        # are timed alike (a single call right after a per-image peer starts with cold caches).
        return repeated(lambda: policy(x, generator=gen))

    def tv_per_image() -> object:
        return [tv(image) for image in images]

    def albu_per_image() -> object:
        return [albu(image) for image in numpy_images]

    where = "" if args.device == "cpu" else f", {args.device}"
    cases: dict[str, tuple[Callable[[], object], int]] = {
        f"{EVO_TA} ({UINT8}{where})": (evo(ta, images), batch * args.batch_calls),
        f"{EVO_TA} ({FLOAT}{where})": (evo(ta, images_float), batch * args.batch_calls),
        f"{EVO_TA_NEAREST} ({UINT8}{where})": (evo(ta_nearest, images), batch * args.batch_calls),
        f"{EVO_5X2} ({UINT8}{where})": (evo(policy_5x2, images), batch * args.batch_calls),
        f"{EVO_5X2} ({FLOAT}{where})": (evo(policy_5x2, images_float), batch * args.batch_calls),
        f"{TV_IMAGE} ({UINT8}{where})": (tv_per_image, batch),
        f"{TV_BATCH} ({UINT8}{where})": (repeated(lambda: tv(images)), batch * args.batch_calls),
        f"{ALBU} (uint8 HxWxC numpy, cpu)": (albu_per_image, batch),
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    rates = interleaved_rates(cases, repeats=args.repeats, warmup=args.warmup, sync=sync)
    return [(name, statistics.median(r)) for name, r in rates.items()]


def _find(results: list[tuple[str, float]], prefix: str) -> float:
    return next(rate for name, rate in results if name.startswith(prefix))


def report(
    results: dict[int, list[tuple[str, float]]], batches: dict[int, int], threads: int
) -> tuple[str, list[str]]:
    """The Markdown table and the goal lines."""
    rows: list[list[str]] = []
    goals: list[str] = []
    for size, measured in results.items():
        per_image = _find(measured, TV_IMAGE)
        per_batch = _find(measured, TV_BATCH)
        for name, rate in measured:
            rows.append(
                [
                    f"{size}x{size} (B={batches[size]})",
                    name,
                    f"{rate:,.0f}",
                    f"{rate / per_image:.2f}x",
                    f"{rate / per_batch:.2f}x",
                ]
            )
        for method, label in ((EVO_TA, "bilinear"), (EVO_TA_NEAREST, "nearest")):
            evo = _find(measured, f"{method} ({UINT8}")
            for peer, rate, goal in (
                ("torchvision per-image", per_image, GOAL_PER_IMAGE),
                ("torchvision per-batch", per_batch, GOAL_PER_BATCH),
            ):
                ratio = evo / rate
                verdict = "met" if ratio >= goal else "not met"
                goals.append(
                    f"{size}x{size}: evoaug TA {label} per-sample (uint8) / {peer} = "
                    f"{ratio:.2f}x (goal >= {goal:g}x on 2 cores; this run {threads} threads): "
                    f"{verdict}"
                )
    headers = [
        "size",
        "method",
        "images/s (median)",
        "vs torchvision per-image",
        "vs torchvision per-batch",
    ]
    return markdown_table(headers, rows), goals


def docs_section(
    args: argparse.Namespace,
    info: dict[str, str],
    table: str,
    goals: list[str],
    policy_5x2: evoaug.Policy,
    albu_note: str,
    warning: str = "",
) -> str:
    """The Markdown that replaces the ``throughput`` section of the docs page."""
    argv = without_output_options(args.argv)
    lines = [
        f"Measured with `{command_line(__file__, [*argv, '--write-docs'])}` on",
        "",
        *(f"- {key}: {value}" for key, value in info.items()),
        "",
        *([warning, ""] if warning else []),
        table,
        "",
        "Goals (evoaug TrivialAugment per-sample on uint8 input):",
        "",
        *(f"- {line}" for line in goals),
        "",
        "Notes:",
        "",
        "- Inputs are uniformly random uint8 RGB images `[B, 3, H, W]`, as a DataLoader delivers",
        "  them; evoaug converts them to float32 and back inside the call (the `uint8 in/out`",
        "  rows). The `float32 in/out` rows feed the same images already in float32 `[0, 1]`.",
        '- evoaug TA is `Policy.preset("trivialaugment", image_size=side)` (32-pixel',
        "  translations, as torchvision); every image draws its own op and magnitude. Its warps",
        "  interpolate bilinearly (evoaug's default); torchvision's TrivialAugmentWide takes the",
        "  nearest pixel by default, as the `TA nearest` row does",
        '  (`interpolation="nearest"`: a gather on the uint8 images, no float round trip).',
        "- torchvision per batch draws one op and one magnitude per call for the whole batch;",
        f"  each of its timings covers {args.batch_calls} calls, so that the op mix averages out;",
        f"  each evoaug timing covers {args.batch_calls} calls too, so that both batched methods",
        "  are timed alike (the per-image peers' timings cover one pass over the batch).",
        f"- albumentations runs per image on HxWxC uint8 numpy arrays: {albu_note}.",
        "- The 5x2 policy, a random genome decoded by `GenomeSpace(n_subpolicies=5, n_genes=2)`,",
        "  is the shape of policy a search produces. It has no torchvision peer (its ratios are",
        "  to the TrivialAugmentWide peers), and its genes fire with probabilities below 1:",
        "",
        "```text",
        str(policy_5x2),
        "```",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table and the goal lines, and optionally update the docs."""
    args = parse_args(argv)
    import cv2

    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    torch.manual_seed(args.seed)  # torchvision's transforms draw from the global stream
    batches = batch_sizes(args)
    policy_5x2 = five_by_two(args.seed)

    info = machine_info()
    info["opencv threads"] = str(cv2.getNumThreads())
    print(f"device: {args.device}; " + machine_markdown(info))
    print(policy_5x2)
    print()

    results: dict[int, list[tuple[str, float]]] = {}
    albu_note = ""
    with CpuShare() as share:
        for i, size in enumerate(args.sizes):
            albu, albu_note = albumentations_peer(size, args.seed, verbose=i == 0)
            results[size] = measure_size(size, batches[size], args, policy_5x2, albu)
    if share.foreign is not None:
        info["CPU taken by other processes during the run"] = f"{share.foreign:.0%}"
        print(f"other processes took {share.foreign:.0%} of the CPU time during the run")
    warning = share.warning()
    if warning:
        print(warning)

    table, goals = report(results, batches, torch.get_num_threads())
    print(table)
    print()
    for line in goals:
        print(line)

    if args.write_docs:
        section = "throughput" if args.device == "cpu" else f"throughput_{args.device}"
        text = docs_section(args, info, table, goals, policy_5x2, albu_note, warning)
        write_docs_section(args.docs, section, text)
        print(f"\nwrote section {section!r} of {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
