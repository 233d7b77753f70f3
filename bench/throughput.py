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
- kornia 0.9 (the optional ``bench`` extra; its rows are skipped with a note without it), on the
  uint8 batch converted to float32 ``[0, 1]`` and back around the call: its auto-augment
  ``TrivialAugment`` (one op per call, a magnitude per image; timed over ``--batch-calls`` calls
  like the per-batch peer), and an ``AugmentationSequential`` of 12 per-sample transforms with
  ``same_on_batch=False`` (every image draws its own coin flips and magnitudes; one call per
  timing). See ``_peers.kornia_peers``.

The goals (issue 21) are printed after the table, each line with its measured ratio and "met" or
"NOT met": on the CPU, at 224x224 evoaug per-sample at least 1.5x albumentations per image, at
32x32 at least 0.6x torchvision's per-batch transform; on the GPU (``--device cuda``), at 32x32
(batch 256) and 224x224 (batch 64), at least 0.5x torchvision's per-batch transform and at least
2x kornia. evoaug per-sample means the TrivialAugment and the 5x2 rows on uint8 input; the goals
are judged on the median of 5 runs (``--repeats 5``, the default).

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
    without_output_options,
    write_docs_section,
)

if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing evoaug
    sys.path.insert(0, str(REPO_ROOT))

from _peers import KORNIA_SEQ_P, albumentations_peer, kornia_peers, on_uint8
from _throughput_report import (
    ALBU,
    EVO_5X2,
    EVO_TA,
    EVO_TA_NEAREST,
    FLOAT,
    GOAL_REPEATS,
    KORNIA_SEQ,
    KORNIA_TA,
    TV_BATCH,
    TV_IMAGE,
    UINT8,
    report,
)

import evoaug

DEFAULT_BATCH = {32: 256, 224: 64}  # other sizes: 64

KORNIA_NOTE = (
    "the uint8 batch is converted to float32 `[0, 1]` and back around each call (kornia takes"
    " float). `kornia.augmentation.auto.TrivialAugment()` draws one op per call for the whole"
    " batch and a magnitude per image; its timings cover as many calls as the per-batch peer's."
    " The per-sample row is an `AugmentationSequential(..., same_on_batch=False)` of 12"
    " transforms, one per op of kornia's TrivialAugment policy, each with probability"
    f" {KORNIA_SEQ_P:.3f}: every image draws its own coin flips and magnitudes (about one op per"
    " image); kornia runs each transform on the whole batch and keeps the images whose coin came"
    " up (`torch.where`). Its timings cover one call. The `vs kornia TA` column is to the"
    " TrivialAugment row; the kornia goals are to the faster kornia row."
)


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


def measure_size(
    size: int,
    batch: int,
    args: argparse.Namespace,
    policy_5x2: evoaug.Policy,
    albu: Callable[[np.ndarray], np.ndarray],
    kornia: tuple[torch.nn.Module, torch.nn.Module] | None = None,
) -> list[tuple[str, float]]:
    """Time every peer at one image size; return ``[(method, median images/s)]``.

    ``kornia`` is ``(TrivialAugment, per-sample sequential)`` from ``_peers.kornia_peers``, or
    ``None`` to leave its rows out.
    """
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
    if kornia is not None:
        kornia_ta, kornia_seq = on_uint8(kornia[0]), on_uint8(kornia[1])
        cases[f"{KORNIA_TA} ({UINT8}{where})"] = (
            repeated(lambda: kornia_ta(images)),
            batch * args.batch_calls,
        )
        cases[f"{KORNIA_SEQ} ({UINT8}{where})"] = (lambda: kornia_seq(images), batch)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    rates = interleaved_rates(cases, repeats=args.repeats, warmup=args.warmup, sync=sync)
    return [(name, statistics.median(r)) for name, r in rates.items()]


def docs_section(
    args: argparse.Namespace,
    info: dict[str, str],
    table: str,
    goals: list[str],
    policy_5x2: evoaug.Policy,
    albu_note: str,
    kornia_note: str,
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
        "Goals (issue 21; evoaug per-sample is the TA and the 5x2 rows on uint8 input, judged on",
        f"the median of {GOAL_REPEATS} runs):",
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
        f"- kornia: {kornia_note}",
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
    kornia: tuple[torch.nn.Module, torch.nn.Module] | None = None
    try:
        kornia_ta, kornia_seq, info["kornia"] = kornia_peers()
        kornia = (kornia_ta, kornia_seq)
        kornia_note = KORNIA_NOTE
    except ImportError as err:
        kornia_note = f"not measured: {err}."
        print(f"note: the kornia rows are skipped: {err}")

    print(f"device: {args.device}; " + machine_markdown(info))
    print(policy_5x2)
    print()

    results: dict[int, list[tuple[str, float]]] = {}
    albu_note = ""
    with CpuShare() as share:
        for i, size in enumerate(args.sizes):
            albu, albu_note = albumentations_peer(size, args.seed, verbose=i == 0)
            results[size] = measure_size(size, batches[size], args, policy_5x2, albu, kornia)
    if share.foreign is not None:
        info["CPU taken by other processes during the run"] = f"{share.foreign:.0%}"
        print(f"other processes took {share.foreign:.0%} of the CPU time during the run")
    warning = share.warning()
    if warning:
        print(warning)

    table, goals = report(
        results, batches, torch.get_num_threads(), device=args.device, repeats=args.repeats
    )
    print(table)
    print()
    for line in goals:
        print(line)

    if args.write_docs:
        section = "throughput" if args.device == "cpu" else f"throughput_{args.device}"
        text = docs_section(args, info, table, goals, policy_5x2, albu_note, kornia_note, warning)
        write_docs_section(args.docs, section, text)
        print(f"\nwrote section {section!r} of {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
