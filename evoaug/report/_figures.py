"""Which figures a report has, drawn from its numbers (or a note saying why one is left out)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from evoaug.report import _plots
from evoaug.report._report import Report

__all__ = ["MAX_SAMPLE_GROUPS", "SAMPLES_PER_GROUP", "ReportFigure", "build_figures"]

SAMPLES_PER_GROUP = 8
MAX_SAMPLE_GROUPS = 12


@dataclass(frozen=True)
class ReportFigure:
    """A figure: an anchor, a title, a caption, and the PNG (base64) or a note instead."""

    key: str
    title: str
    caption: str
    png: str | None
    note: str = ""


def build_figures(report: Report) -> list[ReportFigure]:
    """Draw every figure the report's data allows; the others carry a note.

    Plotting errors propagate (a report is written whole or not at all).
    """
    return [
        _group_accuracy(report),
        _pareto(report),
        _hypervolume(report),
        _timeline(report),
        _samples(report),
    ]


def _group_accuracy(report: Report) -> ReportFigure:
    title = "Accuracy per group"
    caption = "Test accuracy per group with 95% bootstrap intervals"
    series = [(report.label, report.metrics)] if report.metrics else []
    series += [(b.label, b.metrics) for b in report.baselines if b.metrics]
    if not series:
        return ReportFigure("fig-groups", title, caption, None, "No test predictions.")
    if len(series) > 1:
        caption += "; the first bar of each group is this run, the others its baselines"
    return ReportFigure("fig-groups", title, caption + ".", _plots.group_accuracy_plot(series))


def _pareto(report: Report) -> ReportFigure:
    title = "Pareto front"
    caption = (
        "Every evaluated candidate's objectives (higher is better), coloured by generation; "
        "hollow red circles: the final front"
    )
    search = report.search
    if search is None or not np.any(search.finite):
        return ReportFigure("fig-pareto", title, caption, None, "No evaluated candidate.")
    source = "pareto.yaml" if search.front_from_file else "non-dominated candidates of the history"
    return ReportFigure("fig-pareto", title, f"{caption} ({source}).", _plots.pareto_plot(search))


def _hypervolume(report: Report) -> ReportFigure:
    title = "Hypervolume over generations"
    caption = (
        "Solid (left axis): hypervolume of all candidates evaluated so far, recomputed from the "
        "history with each objective scaled to [0, 1] over the whole history (reference point "
        "1.1); dashed (right axis): the current population's hypervolume as the callback logged "
        "it, in the search's own scale. Later generations were scored on a further-trained "
        "model, so neither is a fixed benchmark."
    )
    search = report.search
    if search is None:
        return ReportFigure("fig-hv", title, caption, None, "No search history.")
    return ReportFigure("fig-hv", title, caption, _plots.hypervolume_plot(search))


def _timeline(report: Report) -> ReportFigure:
    title = "Active policy per epoch"
    caption = (
        "Objectives of the policy chosen at the end of each epoch (the one the next epoch "
        "trains with); dotted lines: epochs after which the policy changed."
    )
    records = report.run.timeline
    if not records:
        return ReportFigure("fig-timeline", title, caption, None, "No timeline.jsonl.")
    names: list[str] = []
    for r in records:
        objs = r.get("objectives")
        if isinstance(objs, dict):
            names.extend(str(k) for k in objs if str(k) not in names)
    epochs = [int(r.get("epoch", i)) for i, r in enumerate(records)]
    values = {n: [_number((r.get("objectives") or {}).get(n)) for r in records] for n in names}
    changes = [
        epochs[i]
        for i in range(1, len(records))
        if records[i].get("policy") != records[i - 1].get("policy")
    ]
    png = _plots.timeline_plot(epochs, values, changes)
    return ReportFigure("fig-timeline", title, caption, png)


def _number(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _samples(report: Report) -> ReportFigure:
    title = "Augmented samples per group"
    caption = (
        "Clean validation probe images per group, and the same images augmented by the chosen "
        f"policy (torch.Generator seeded with {report.seed}; every image draws its own "
        "sub-policy, coin flips and signs)."
    )
    samples, policy = report.run.samples, report.policy
    if samples is None:
        note = "No samples.pt or samples.npz in the run directory."
        return ReportFigure("fig-samples", title, caption, None, note)
    if policy is None or policy.policy is None:
        note = "The chosen policy is missing or cannot be applied here."
        return ReportFigure("fig-samples", title, caption, None, note)
    names = report.group_names
    ids = [int(g) for g in np.unique(samples.groups)]
    note = ""
    if len(ids) > MAX_SAMPLE_GROUPS:
        note = f"Showing the first {MAX_SAMPLE_GROUPS} of {len(ids)} groups."
        ids = ids[:MAX_SAMPLE_GROUPS]
    keep = [np.flatnonzero(samples.groups == g)[:SAMPLES_PER_GROUP] for g in ids]
    clean = torch.from_numpy(samples.images[np.concatenate(keep)])
    try:
        augmented = policy.policy(clean, generator=torch.Generator().manual_seed(report.seed))
    except Exception as err:  # a user's op failing must not cost the whole report
        note = f"Applying the chosen policy failed ({type(err).__name__}: {err})."
        return ReportFigure("fig-samples", title, caption, None, note)
    rows, start = [], 0
    for g, index in zip(ids, keep, strict=True):
        stop = start + len(index)
        rows.append(
            (names.get(g, str(g)), clean[start:stop].numpy(), augmented[start:stop].numpy())
        )
        start = stop
    return ReportFigure("fig-samples", title, caption, _plots.samples_plot(rows), note)
