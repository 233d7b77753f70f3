"""The report's figures: matplotlib ``Figure`` objects rendered by Agg to base64 PNG.

Figures are built with :class:`matplotlib.figure.Figure` directly, not ``pyplot``: no global
state, no backend switch, no window. Labels are user data (group and op names), so ``$`` is
escaped (no mathtext) and long names are shortened; PNG metadata omits the matplotlib version
so equal inputs give equal bytes.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from evoaug.report._metrics import GroupMetrics
from evoaug.report._search import SearchSummary

__all__ = [
    "group_accuracy_plot",
    "hypervolume_plot",
    "pareto_plot",
    "samples_plot",
    "timeline_plot",
]

_MAX_LABEL = 28
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _label(text: object) -> str:
    """A user string safe as a matplotlib label: no mathtext, at most ``_MAX_LABEL`` chars."""
    value = " ".join(str(text).split())
    if len(value) > _MAX_LABEL:
        value = value[: _MAX_LABEL - 1] + "\u2026"
    return value.replace("\\", "\\\\").replace("$", r"\$")


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence missing-glyph warnings from unusual characters in user labels."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph.*missing", category=UserWarning)
        yield


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    with _quiet():
        figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def group_accuracy_plot(series: Sequence[tuple[str, GroupMetrics]]) -> str:
    """Bars of accuracy per group (95% intervals as error bars), one bar per run.

    Args:
        series: ``(run label, metrics)``; the first is the reported run, then the baselines.

    Returns:
        The PNG, base64-encoded.

    """
    names: list[str] = []
    for _, metrics in series:
        names.extend(n for n in metrics.group_names.values() if n not in names)
    width = 0.8 / max(len(series), 1)
    inches = 0.9 * len(names) * max(1.0, len(series) / 2) + 2
    figure = Figure(figsize=(min(max(6.0, inches), 16.0), 3.8), layout="constrained")
    ax = figure.add_subplot()
    x = np.arange(len(names))
    for k, (label, metrics) in enumerate(series):
        by_name = {metrics.group_names[g]: g for g in metrics.group_ids}
        heights, low, high = [], [], []
        for name in names:
            g = by_name.get(name)
            value = metrics.by_group[g]["accuracy"] if g is not None else None
            ci = metrics.ci_by_group[g].get("accuracy") if g is not None else None
            heights.append(math.nan if value is None else value)
            low.append(0.0 if value is None or ci is None else max(value - ci[0], 0.0))
            high.append(0.0 if value is None or ci is None else max(ci[1] - value, 0.0))
        ax.bar(
            x + (k - (len(series) - 1) / 2) * width,
            heights,
            width,
            yerr=np.array([low, high]),
            capsize=2,
            label=_label(label),
            color=_COLORS[k % len(_COLORS)],
        )
    rotation = 0 if len(names) <= 6 else 30 if len(names) <= 12 else 90
    ax.set_xticks(x, [_label(n) for n in names], rotation=rotation)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy")
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize="small", loc="lower right")
    return _png(figure)


def pareto_plot(summary: SearchSummary) -> str:
    """Pairwise scatter of the objectives of every candidate, coloured by generation.

    The final front is drawn as large hollow markers. With one objective: value per generation.
    """
    names, values, gens = summary.objectives, summary.values, summary.generation
    finite = summary.finite
    pairs = list(itertools.combinations(range(len(names)), 2)) or [(-1, 0)]
    cols = min(3, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    figure = Figure(figsize=(4.2 * cols + 1.2, 3.6 * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    vmax = max(int(gens.max()) if gens.size else 0, 1)
    scatter: Any = None
    for ax, (i, j) in zip(axes.flat, pairs, strict=False):
        xs = gens[finite].astype(float) if i < 0 else values[finite, i]
        scatter = ax.scatter(
            xs, values[finite, j], c=gens[finite], cmap="viridis", vmin=0, vmax=vmax, s=14
        )
        if summary.front.shape[0]:
            fx = np.full(summary.front.shape[0], float(vmax)) if i < 0 else summary.front[:, i]
            ax.scatter(
                fx,
                summary.front[:, j],
                s=70,
                facecolors="none",
                edgecolors="#d62728",
                linewidths=1.4,
                label="final front",
            )
        if i < 0:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generation" if i < 0 else _label(names[i]))
        ax.set_ylabel(_label(names[j]))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    if summary.front.shape[0]:
        axes.flat[0].legend(fontsize="small", loc="best")
    if scatter is not None:
        bar = figure.colorbar(scatter, ax=list(axes.flat), label="generation", shrink=0.8)
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    return _png(figure)


def hypervolume_plot(summary: SearchSummary) -> str:
    """Recomputed archive hypervolume per generation, and the callback's logged values.

    The two use different normalizations, so the logged one gets its own (right) axis.
    """
    figure = Figure(figsize=(6.5, 3.4), layout="constrained")
    ax = figure.add_subplot()
    lines = ax.plot(
        summary.generations, summary.hypervolume, marker="o", label="archive (recomputed, left)"
    )
    if summary.logged_hypervolume:
        g, v = zip(*summary.logged_hypervolume, strict=True)
        right = ax.twinx()
        lines += right.plot(
            g,
            v,
            marker="s",
            linestyle="--",
            color=_COLORS[1],
            label="population (logged by the callback, right)",
        )
        right.set_ylabel("population hypervolume")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("archive hypervolume")
    ax.grid(alpha=0.3)
    ax.legend(lines, [str(line.get_label()) for line in lines], fontsize="small", loc="lower right")
    return _png(figure)


def timeline_plot(
    epochs: Sequence[int], objectives: dict[str, list[float]], changes: Sequence[int]
) -> str:
    """The active policy's objectives per epoch; dotted lines where the policy changed.

    Args:
        epochs: Epoch of every timeline record.
        objectives: Objective name -> value per record (NaN before the first generation).
        changes: Epochs after which a different policy was swapped in.

    """
    figure = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = figure.add_subplot()
    for k, (name, values) in enumerate(objectives.items()):
        ax.plot(epochs, values, marker="o", label=_label(name), color=_COLORS[k % len(_COLORS)])
    for epoch in changes:
        ax.axvline(epoch, color="0.45", linestyle=":", linewidth=1.2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch (policy chosen at its end)")
    ax.set_ylabel("objective (higher is better)")
    ax.grid(alpha=0.3)
    if objectives:
        ax.legend(fontsize="small", loc="best")
    return _png(figure)


def _show(ax: Axes, image: np.ndarray) -> None:
    """Draw a uint8 ``[C, H, W]`` image without axes."""
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(np.transpose(image[:3], (1, 2, 0)), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def samples_plot(rows: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """Per group, a row of clean images and the same images augmented by the policy.

    Args:
        rows: ``(group name, clean uint8 [k, C, H, W], augmented uint8 [k, C, H, W])``.

    """
    cols = max(r[1].shape[0] for r in rows)
    figure = Figure(figsize=(1.0 * cols + 2.2, 1.1 * 2 * len(rows) + 0.3))
    axes = figure.subplots(2 * len(rows), cols, squeeze=False)
    for r, (name, clean, augmented) in enumerate(rows):
        for kind, images in enumerate((clean, augmented)):
            line = axes[2 * r + kind]
            for c, ax in enumerate(line):
                if c < images.shape[0]:
                    _show(ax, images[c])
                else:
                    ax.set_visible(False)
            tag = "clean" if kind == 0 else "augmented"
            line[0].set_ylabel(f"{_label(name)}\n{tag}", rotation=0, ha="right", va="center")
    figure.subplots_adjust(left=0.2, right=0.98, top=0.98, bottom=0.02, wspace=0.05, hspace=0.1)
    return _png(figure)
