"""The rows and the goals of ``bench/throughput.py``: row names, the goal lines, the table.

The goals are issue 21's; :data:`GOALS` declares each once, and :func:`goal_lines` turns measured
rates into lines that state the measured ratio and end with "met" or "NOT met".
"""

from __future__ import annotations

from dataclasses import dataclass

from _common import markdown_table
from _peers import KORNIA_INSTALL

__all__ = [
    "ALBU",
    "EVO_5X2",
    "EVO_TA",
    "EVO_TA_NEAREST",
    "FLOAT",
    "GOALS",
    "GOAL_METHODS",
    "GOAL_REPEATS",
    "KORNIA_ROWS",
    "KORNIA_SEQ",
    "KORNIA_TA",
    "TV_BATCH",
    "TV_IMAGE",
    "UINT8",
    "Goal",
    "goal_lines",
    "report",
]

EVO_TA = "evoaug TA, per-sample, batched"
EVO_TA_NEAREST = "evoaug TA nearest, per-sample, batched"
EVO_5X2 = "evoaug 5x2 policy, per-sample, batched"
TV_IMAGE = "torchvision TrivialAugmentWide, per image"
TV_BATCH = "torchvision TrivialAugmentWide, per batch"
ALBU = "albumentations, per image"
KORNIA_TA = "kornia TrivialAugment, one op per call"
KORNIA_SEQ = "kornia AugmentationSequential, per-sample"
UINT8, FLOAT = "uint8 in/out", "float32 in/out"


@dataclass(frozen=True)
class Goal:
    """evoaug's per-sample rows (:data:`GOAL_METHODS`) at least ``target`` times a peer's rate.

    ``peers`` are row-name prefixes, matched on their uint8 rows; the fastest one is the reference.
    """

    device: str
    size: int
    peers: tuple[str, ...]
    peer_label: str
    target: float


GOAL_METHODS = ((EVO_TA, "TA"), (EVO_5X2, "5x2 policy"))
GOAL_REPEATS = 5  # the goals are judged on the median of this many runs
KORNIA_ROWS = (KORNIA_TA, KORNIA_SEQ)
GOALS = (  # issue 21
    Goal("cpu", 32, (TV_BATCH,), "torchvision per-batch", 0.6),
    Goal("cpu", 224, (ALBU,), "albumentations per image", 1.5),
    *(Goal("cuda", s, (TV_BATCH,), "torchvision per-batch", 0.5) for s in (32, 224)),
    *(Goal("cuda", s, KORNIA_ROWS, "kornia (the faster of its rows)", 2.0) for s in (32, 224)),
)


def _find(results: list[tuple[str, float]], prefix: str) -> float | None:
    return next((rate for name, rate in results if name.startswith(prefix)), None)


def _ratio(rate: float, reference: float | None) -> str:
    return "-" if reference is None else f"{rate / reference:.2f}x"


def goal_lines(
    results: dict[int, list[tuple[str, float]]],
    batches: dict[int, int],
    *,
    device: str,
    repeats: int,
    threads: int,
) -> list[str]:
    """One line per goal of :data:`GOALS` for ``device`` and per evoaug method of
    :data:`GOAL_METHODS`, at the sizes measured; each ends with "met" or "NOT met" (or says why
    it was not measured).
    """
    lines: list[str] = []
    runs = f"median of {repeats} run{'s' if repeats != 1 else ''}"
    if repeats < GOAL_REPEATS:
        runs += f"; the goal is judged on {GOAL_REPEATS}"
    where = f"{threads} threads" if device == "cpu" else device
    for goal in GOALS:
        if goal.device != device or goal.size not in results:
            continue
        measured = results[goal.size]
        peer_rates = [_find(measured, f"{peer} (uint8") for peer in goal.peers]
        rates = [rate for rate in peer_rates if rate is not None]
        head = f"{goal.size}x{goal.size} (B={batches[goal.size]}, {where})"
        for method, label in GOAL_METHODS:
            evo = _find(measured, f"{method} ({UINT8}")
            what = f"evoaug {label} per-sample (uint8) / {goal.peer_label}"
            if evo is None or not rates:
                missing = goal.peer_label if evo is not None else f"evoaug {label}"
                hint = f"; kornia needs `{KORNIA_INSTALL}`" if goal.peers == KORNIA_ROWS else ""
                lines.append(f"{head}: {what}: not measured (no {missing} row{hint})")
                continue
            ratio = evo / max(rates)
            verdict = "met" if ratio >= goal.target else "NOT met"
            lines.append(
                f"{head}: {what} = {ratio:.2f}x (goal >= {goal.target:g}x, {runs}): {verdict}"
            )
    return lines


def report(
    results: dict[int, list[tuple[str, float]]],
    batches: dict[int, int],
    threads: int,
    *,
    device: str = "cpu",
    repeats: int = GOAL_REPEATS,
) -> tuple[str, list[str]]:
    """The Markdown table and the goal lines (:func:`goal_lines`).

    ``results`` is ``{image side: [(row name, images/s)]}``, from ``throughput.measure_size``.
    The ratio columns are to torchvision per image, torchvision per batch and kornia's
    TrivialAugment (uint8), at the same size; "-" where that peer was not measured.
    """
    rows: list[list[str]] = []
    for size, measured in results.items():
        references = [_find(measured, peer) for peer in (TV_IMAGE, TV_BATCH, KORNIA_TA)]
        for name, rate in measured:
            rows.append(
                [
                    f"{size}x{size} (B={batches[size]})",
                    name,
                    f"{rate:,.0f}",
                    *(_ratio(rate, reference) for reference in references),
                ]
            )
    headers = [
        "size",
        "method",
        "images/s (median)",
        "vs torchvision per-image",
        "vs torchvision per-batch",
        "vs kornia TA",
    ]
    goals = goal_lines(results, batches, device=device, repeats=repeats, threads=threads)
    return markdown_table(headers, rows), goals
