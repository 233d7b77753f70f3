"""Where a per-sample call spends its time, op by op, against the per-image goal (issue 2).

The throughput goal compares evoaug's per-sample TrivialAugment on a batch with torchvision's
``TrivialAugmentWide`` applied per image: at least 5x. This script splits both into their ops, at
one image size (224x224 by default, where the goal is not met), on uint8 RGB images:

- **torchvision, per image**: each of ``TrivialAugmentWide``'s 14 ops, called per image through
  the transform's own op dispatch (``_apply_image_or_video_transform``, nearest interpolation),
  with a magnitude drawn per image as the transform draws it; and the whole transform per image.
- **evoaug, one op on the batch**: a policy of that op alone (its gene of the
  ``trivialaugment`` preset, ``interpolation="nearest"``), every image drawing its own magnitude.
  Every image takes the same op, so this is the op's own cost with no grouping; the whole
  preset's call adds the grouping (a sort and an unsort of the batch by op).
- **budget**: torchvision's whole per-image transform divided by the goal (5): what one image
  may cost evoaug, on average over the ops, for the goal to be met.
- **OpenCV, per image** (a reference): the op's nearest OpenCV call on the same image as HxWxC
  uint8 (``warpAffine`` with evoaug's matrix and nearest interpolation, ``convertScaleAbs``,
  ``addWeighted``, ``LUT``, ``equalizeHist``, ``filter2D``): what hand-vectorized uint8 kernels
  cost, one image at a time. Not the same arithmetic as torchvision's or evoaug's in every
  detail; a measure of speed, not of agreement.
- ``--fused`` (a diagnostic, not a supported mode of evoaug): each non-warp op's float kernel
  wrapped as uint8 in, float arithmetic, rounded uint8 out, and the nearest warp, each compiled
  by ``torch.compile`` (Inductor: one C++ loop per fused group of element-wise operations
  instead of one pass over memory per PyTorch operation). It needs a C++ compiler; its compile
  time is reported and excluded from the timings.

The unit of the argument is one element-wise pass: the time PyTorch takes to convert one
cache-sized chunk of images (as evoaug's colour ops process them) from uint8 to float32 into a
buffer it reuses, per image (printed as ``one pass``). An op in eager PyTorch costs a number of
such passes (conversions, each arithmetic operation, rounding, the copy back). evoaug's timings
cover ``--calls`` calls in a row, as ``throughput.py`` times the batched methods.

Run ``python bench/op_budget.py --help`` for the options; ``--write-docs`` updates the
``op_budget`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

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
from evoaug.augment import CHUNK_ELEMENTS
from evoaug.ops import get_op, warp_nearest

GOAL_PER_IMAGE = 5.0  # evoaug TA per-sample / torchvision per image (issue 2)
TV_WHOLE = "TrivialAugmentWide (whole transform)"
EVO_WHOLE = "trivialaugment preset (all 14 ops, grouped)"
ONE_PASS = "one pass (uint8 -> float32 of a chunk)"
NOT_FUSED = ("Identity", "Equalize")  # nothing to fuse; histograms, not element-wise


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=224, help="image side (default 224)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per call (default 64)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls (default 2)")
    parser.add_argument("--calls", type=int, default=8, help="evoaug calls per timing (default 8)")
    parser.add_argument(
        "--fused",
        action="store_true",
        help="also time torch.compile-fused uint8 kernels (a diagnostic; needs a C++ compiler)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--write-docs", action="store_true", help="replace the op_budget section of --docs"
    )
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.size < 8:
        parser.error(f"`--size` must be >= 8 pixels, got {args.size}")
    for name in ("batch_size", "repeats", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"`--{name.replace('_', '-')}` must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"`--warmup` must be >= 0, got {args.warmup}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"`--threads` must be >= 1, got {args.threads}")
    return args


def one_op_policies(size: int) -> dict[str, evoaug.Policy]:
    """``{op: the preset's gene of that op alone, as a policy}``, nearest, as TrivialAugment."""
    preset = evoaug.Policy.preset("trivialaugment", image_size=size, interpolation="nearest")
    return {
        sub.ops[0]: evoaug.Policy(
            (sub,), magnitude_sampling=preset.magnitude_sampling, interpolation="nearest"
        )
        for sub in preset
    }


def torchvision_op(
    name: str, images: torch.Tensor, generator: torch.Generator
) -> Callable[[], object]:
    """``TrivialAugmentWide``'s op ``name`` per image, magnitudes drawn as the transform does."""
    from torchvision.transforms import v2

    tv = v2.TrivialAugmentWide()
    magnitudes_fn, signed = tv._AUGMENTATION_SPACE[name]
    h, w = images.shape[-2:]
    bins = magnitudes_fn(tv.num_magnitude_bins, h, w)
    picks = torch.randint(tv.num_magnitude_bins, (images.shape[0],), generator=generator)
    flips = torch.rand(images.shape[0], generator=generator) < 0.5
    values = [
        0.0 if bins is None else float(bins[p]) * (-1.0 if signed and f else 1.0)
        for p, f in zip(picks.tolist(), flips.tolist(), strict=True)
    ]

    def run() -> object:
        return [
            tv._apply_image_or_video_transform(
                image, name, m, interpolation=tv.interpolation, fill=tv._fill
            )
            for image, m in zip(images, values, strict=True)
        ]

    return run


def magnitudes(policy: evoaug.Policy, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` magnitudes of a one-op policy's gene: a uniform level below its own, a random sign."""
    gene = policy.sub_policies[0].genes[0]
    spec = get_op(gene.op)
    levels = gene.level * torch.rand(n, generator=generator)
    signs = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    return spec.magnitude(levels) * (signs if spec.signed else 1.0)


def opencv_op(
    name: str, policy: evoaug.Policy, images: torch.Tensor, generator: torch.Generator
) -> Callable[[], object] | None:
    """The op's nearest OpenCV equivalent per HxWxC image, or ``None`` where it has none."""
    import cv2
    import numpy as np

    spec = get_op(name)
    b, _, h, w = images.shape
    arrays = [np.ascontiguousarray(im) for im in images.permute(0, 2, 3, 1).numpy()]
    mags = magnitudes(policy, b, generator).tolist()
    if spec.affine is not None:
        # evoaug's inverse matrices in centred coordinates, as OpenCV's inverse pixel map.
        maps = []
        for (a, bb, c), (d, e, f) in spec.affine(torch.tensor(mags), h, w).double().tolist():
            cx, cy = 0.5 - w / 2, 0.5 - h / 2
            tx = a * cx + bb * cy + c + w / 2 - 0.5
            ty = d * cx + e * cy + f + h / 2 - 0.5
            maps.append(np.array([[a, bb, tx], [d, e, ty]]))
        flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        return lambda: [
            cv2.warpAffine(im, m, (w, h), flags=flags, borderValue=(0, 0, 0))
            for im, m in zip(arrays, maps, strict=True)
        ]
    if name == "Brightness":
        return lambda: [
            cv2.convertScaleAbs(im, alpha=1.0 + m) for im, m in zip(arrays, mags, strict=True)
        ]
    if name == "Color":

        def color() -> object:
            out = []
            for im, m in zip(arrays, mags, strict=True):
                gray = cv2.cvtColor(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
                out.append(cv2.addWeighted(im, 1.0 + m, gray, -m, 0.0))
            return out

        return color
    if name == "Contrast":

        def contrast() -> object:
            out = []
            for im, m in zip(arrays, mags, strict=True):
                mean = float(cv2.mean(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY))[0])
                out.append(cv2.convertScaleAbs(im, alpha=1.0 + m, beta=-m * mean))
            return out

        return contrast
    if name == "Sharpness":
        kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0

        def sharpness() -> object:
            out = []
            for im, m in zip(arrays, mags, strict=True):
                blurred = cv2.filter2D(im, -1, kernel)
                out.append(cv2.addWeighted(im, 1.0 + m, blurred, -m, 0.0))
            return out

        return sharpness
    if name in ("Posterize", "Solarize"):
        levels_u8 = np.arange(256)
        luts = []
        for m in mags:
            if name == "Posterize":
                shift = 8 - round(min(max(m, 0.0), 8.0))
                luts.append(((levels_u8 >> shift) << shift).astype(np.uint8))
            else:
                luts.append(
                    np.where(levels_u8 >= m * 255, 255 - levels_u8, levels_u8).astype(np.uint8)
                )
        return lambda: [cv2.LUT(im, lut) for im, lut in zip(arrays, luts, strict=True)]
    if name == "Equalize":
        return lambda: [cv2.merge([cv2.equalizeHist(ch) for ch in cv2.split(im)]) for im in arrays]
    return None


def fused_kernel(
    name: str, policy: evoaug.Policy, images: torch.Tensor, generator: torch.Generator
) -> tuple[Callable[[], object], float]:
    """The op as one compiled uint8 -> uint8 kernel; returns it and its compile seconds."""
    spec = get_op(name)
    b, _, h, w = images.shape
    drawn = magnitudes(policy, b, generator)
    if spec.affine is not None:
        matrices = spec.affine(drawn, h, w)
        compiled = torch.compile(warp_nearest)

        def run() -> object:
            return compiled(images, matrices)

    else:

        def kernel(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
            y = spec.fn(x.to(torch.float32) / 255.0, m)
            return (y * 255.0).clamp(0.0, 255.0).round().to(torch.uint8)

        compiled = torch.compile(kernel)

        def run() -> object:
            return compiled(images, drawn)

    start = time.perf_counter()
    run()
    return run, time.perf_counter() - start


def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """``{row: {column: µs per image}}`` for every op and the whole transforms."""
    gen = torch.Generator().manual_seed(args.seed)
    b, side = args.batch_size, args.size
    images = torch.randint(0, 256, (b, 3, side, side), generator=gen, dtype=torch.uint8)
    policies = one_op_policies(side)
    whole = evoaug.Policy.preset("trivialaugment", image_size=side, interpolation="nearest")
    from torchvision.transforms import v2

    tv = v2.TrivialAugmentWide()

    def repeated(policy: evoaug.Policy) -> tuple[Callable[[], object], int]:
        def run() -> None:
            for _ in range(args.calls):
                policy(images, generator=gen)

        return run, b * args.calls

    chunk = max(1, CHUNK_ELEMENTS // images[0].numel())
    floats = torch.empty((min(chunk, b), *images.shape[1:]), dtype=torch.float32)
    cases: dict[str, tuple[Callable[[], object], int]] = {}
    for name, policy in policies.items():
        cases[f"tv {name}"] = (torchvision_op(name, images, gen), b)
        cases[f"evo {name}"] = repeated(policy)
        reference = opencv_op(name, policy, images, gen)
        if reference is not None:
            cases[f"cv {name}"] = (reference, b)
    cases[f"tv {TV_WHOLE}"] = ((lambda: [tv(image) for image in images]), b)
    cases[f"evo {EVO_WHOLE}"] = repeated(whole)
    cases[f"evo {ONE_PASS}"] = ((lambda: floats.copy_(images[: len(floats)])), len(floats))
    compile_s: dict[str, float] = {}
    if args.fused:
        for name, policy in policies.items():
            if name in NOT_FUSED:
                continue
            run, seconds = fused_kernel(name, policy, images, gen)
            cases[f"fused {name}"] = (run, b)
            compile_s[name] = seconds
            print(f"compiled {name} in {seconds:.1f} s")
    rates = interleaved_rates(cases, repeats=args.repeats, warmup=args.warmup)
    table: dict[str, dict[str, float]] = {}
    for key, values in rates.items():
        column, row = key.split(" ", 1)
        table.setdefault(row, {})[column] = 1e6 / statistics.median(values)
    for name, seconds in compile_s.items():
        table[name]["compile s"] = seconds
    return table


def report(table: dict[str, dict[str, float]], fused: bool) -> tuple[str, list[str]]:
    """The Markdown table and the summary lines."""
    budget = table[TV_WHOLE]["tv"] / GOAL_PER_IMAGE
    ops = [row for row in table if row not in (TV_WHOLE, EVO_WHOLE, ONE_PASS)]
    unit = table[ONE_PASS]["evo"]

    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:,.0f}"

    rows: list[list[str]] = []
    for row in [*ops, TV_WHOLE, EVO_WHOLE]:
        tv, evo = table[row].get("tv"), table[row].get("evo")
        if row == TV_WHOLE:
            evo = table[EVO_WHOLE]["evo"]
        if row == EVO_WHOLE:
            continue
        line = [
            row if row != TV_WHOLE else "whole transform (evoaug: the preset, grouped)",
            cell(tv),
            cell(evo),
            f"{tv / evo:.1f}x" if tv is not None and evo is not None else "",
            f"{evo / unit:.1f}" if evo is not None else "",
            cell(table[row].get("cv")),
        ]
        if fused:
            f = table[row].get("fused")
            line.append(cell(f))
            line.append(f"{tv / f:.1f}x" if tv is not None and f is not None else "")
        rows.append(line)
    headers = [
        "op",
        "torchvision per image (µs/image)",
        "evoaug, one op on the batch (µs/image)",
        "speed-up",
        "evoaug in passes",
        "OpenCV per image, reference (µs/image)",
    ]
    if fused:
        headers += ["fused by torch.compile (µs/image)", "fused speed-up"]
        # Identity and Equalize are not fused: nothing to fuse, and histograms.
    mean_ops = statistics.fmean(table[row]["evo"] for row in ops)
    mean_tv = statistics.fmean(table[row]["tv"] for row in ops)
    evo_whole = table[EVO_WHOLE]["evo"]
    lines = [
        f"one element-wise pass (uint8 -> float32 of a chunk of images): {unit:.1f} µs per image",
        f"torchvision TrivialAugmentWide per image: {table[TV_WHOLE]['tv']:.0f} µs "
        f"(its 14 ops alone: {mean_tv:.0f} µs on average)",
        f"budget for the goal ({GOAL_PER_IMAGE:g}x): {budget:.0f} µs per image, "
        f"{budget / unit:.1f} passes",
        f"evoaug: its 14 ops alone {mean_ops:.0f} µs per image on average; the preset, grouped, "
        f"{evo_whole:.0f} µs ({table[TV_WHOLE]['tv'] / evo_whole:.1f}x torchvision per image); "
        f"grouping {evo_whole - mean_ops:.0f} µs",
        f"ops within the budget: {sum(table[r]['evo'] <= budget for r in ops)} of {len(ops)}",
    ]
    with_cv = [r for r in ops if "cv" in table[r]]
    if with_cv:
        as_cv = statistics.fmean(table[r].get("cv", table[r]["evo"]) for r in ops)
        lines.append(
            f"OpenCV per image within the budget: {sum(table[r]['cv'] <= budget for r in with_cv)}"
            f" of {len(with_cv)}; at OpenCV's cost for those ops (evoaug's for the others): "
            f"{as_cv:.0f} µs per image on average, plus grouping {evo_whole - mean_ops:.0f} µs"
        )
    if fused:
        fused_ops = [r for r in ops if "fused" in table[r]]
        best = statistics.fmean(
            min(table[r]["evo"], table[r].get("fused", table[r]["evo"])) for r in ops
        )
        lines.append(
            f"fused kernels within the budget: "
            f"{sum(table[r]['fused'] <= budget for r in fused_ops)} of {len(fused_ops)}; "
            f"the faster of eager and fused per op, on average: {best:.0f} µs per image, "
            f"plus grouping {evo_whole - mean_ops:.0f} µs"
        )
    return markdown_table(headers, rows), lines


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table and the summary, and optionally update the docs."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # torchvision's transforms draw from the global stream
    info = machine_info()
    print(machine_markdown(info))
    with CpuShare() as share:
        table = measure(args)
    if share.foreign is not None:
        info["CPU taken by other processes during the run"] = f"{share.foreign:.0%}"
    warning = share.warning()
    if warning:
        print(warning)
    markdown, lines = report(table, args.fused)
    print(markdown)
    print()
    for line in lines:
        print(line)
    if args.write_docs:
        argv = without_output_options(args.argv)
        text = "\n".join(
            [
                f"Measured with `{command_line(__file__, [*argv, '--write-docs'])}` "
                f"({args.size}x{args.size}, batch {args.batch_size}, uint8 RGB).",
                "",
                machine_markdown(info),
                "",
                *([warning, ""] if warning else []),
                markdown,
                "",
                *(f"- {line}" for line in lines),
            ]
        )
        write_docs_section(args.docs, "op_budget", text)
        print(f"\nwrote section 'op_budget' of {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
