"""The report: everything computed once from a run directory (and baselines)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evoaug._version import __version__
from evoaug.exceptions import ConfigError
from evoaug.report._compare import Comparison
from evoaug.report._findings import findings
from evoaug.report._load import RunData, load_run
from evoaug.report._metrics import BOOTSTRAP_SAMPLES, CONFIDENCE, GroupMetrics
from evoaug.report._names import RunNames, get, mapping
from evoaug.report._policy import chosen_policy
from evoaug.report._search import SearchSummary, summarize_search

__all__ = ["FORMAT_VERSION", "Baseline", "Report", "build_report"]

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Baseline:
    """A baseline run: its data, metrics and comparison (``None`` without test predictions)."""

    label: str
    run: RunData
    metrics: GroupMetrics | None
    comparison: Comparison | None


def _readable(value: object) -> object:
    """``<pkg.mod.Weights object at 0x7f..>`` (a default repr) -> ``Weights``; else unchanged."""
    if isinstance(value, str):
        return re.sub(r"<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>", r"\1", value)
    return value


def _unique(label: str, taken: set[str]) -> str:
    out, n = label, 2
    while out in taken:
        out, n = f"{label} ({n})", n + 1
    taken.add(out)
    return out


def _run_metrics(
    run: RunData, names: RunNames, n_bootstrap: int, confidence: float, seed: int
) -> GroupMetrics | None:
    predictions = run.predictions
    if predictions is None:
        return None
    return GroupMetrics(
        y_true=predictions.y_true,
        y_pred=predictions.y_pred,
        groups=predictions.group,
        group_names=names.group_names,
        binary=names.binary,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )


class Report:
    """A fairness report of one run (and its baselines), computed once.

    Load the run directories with :func:`evoaug.report.build_report`; render with
    :func:`evoaug.report.write_report`. Every attribute is computed in ``__init__``.

    Args:
        run: The run's files (:func:`evoaug.report.load_run`).
        baselines: Baseline runs to compare against.
        n_bootstrap: Bootstrap resamples of every interval (stratified by group).
        confidence: Level of the intervals.
        seed: Seed of the bootstrap and of the augmented sample grid.

    Attributes:
        run: The :class:`RunData` read from the run directory.
        label: A short name of the run (its log folder, e.g. ``version_3``).
        metrics: The run's :class:`GroupMetrics`, or ``None`` without test predictions.
        baselines: One :class:`Baseline` per baseline directory, in the order given.
        search: The :class:`SearchSummary`, or ``None`` without a history.
        policy: The :class:`ChosenPolicy`, or ``None``.
        groups_source: ``"sensitive attribute"`` or ``"classes"``.
        sensitive_attribute: The sensitive attribute's name, or ``None``.
        class_names: Class id -> name (empty when the run recorded none).
        group_names: Group id -> name (empty when the run recorded none).
        summary: Summary fields, name -> text (dataset, model, objectives, ...).
        versions: Package versions recorded by the run.
        findings: Key findings in plain words.
        notes: What is missing or was left out, and why.

    """

    def __init__(
        self,
        *,
        run: RunData,
        baselines: Sequence[RunData] = (),
        n_bootstrap: int = BOOTSTRAP_SAMPLES,
        confidence: float = CONFIDENCE,
        seed: int = 0,
    ) -> None:
        if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0:
            raise ConfigError(f"`n_bootstrap` must be an int >= 0, got {n_bootstrap!r}")
        if not isinstance(confidence, float) or not 0.0 < confidence < 1.0:
            raise ConfigError(f"`confidence` must be a float in (0, 1), got {confidence!r}")
        self.n_bootstrap, self.confidence, self.seed = n_bootstrap, confidence, seed
        self.run = run
        self.notes: list[str] = list(run.notes)
        taken: set[str] = set()
        self.label = _unique(run.label, taken)
        resolved = RunNames(run)
        self.groups_source: str = resolved.groups_source
        self.sensitive_attribute: str | None = resolved.sensitive_attribute
        self.class_names: dict[int, str] = resolved.class_names
        self.group_names: dict[int, str] = resolved.group_names
        self.metrics = _run_metrics(run, resolved, n_bootstrap, confidence, seed)
        self.baselines = tuple(self._baseline(b, taken) for b in baselines)
        objectives = get(run.info, "evoaug", "objectives")
        self.search: SearchSummary | None = summarize_search(
            run.history,
            objectives=objectives if isinstance(objectives, list) else (),
            pareto=run.pareto,
            timeline=run.timeline,
        )
        self.policy = chosen_policy(run, self.notes)
        self.summary = self._summary()
        versions = run.info.get("versions")
        self.versions: dict[str, str] = (
            {str(k): str(v) for k, v in versions.items()} if isinstance(versions, dict) else {}
        )
        self.findings = findings(
            metrics=self.metrics,
            comparisons=[(b.label, b.comparison) for b in self.baselines if b.comparison],
            search=self.search,
            policy_name=self.policy.name if self.policy else None,
        )

    def _baseline(self, run: RunData, taken: set[str]) -> Baseline:
        label = _unique(run.label, taken)
        metrics = _run_metrics(run, RunNames(run), self.n_bootstrap, self.confidence, self.seed)
        comparison = None
        if metrics is None:
            self.notes.append(f"Baseline '{label}' has no test predictions; it is not compared.")
        elif self.metrics is None:
            self.notes.append(f"Baseline '{label}' is not compared: this run has no predictions.")
        else:
            comparison = Comparison(
                run=self.metrics,
                baseline=metrics,
                n_bootstrap=self.n_bootstrap,
                confidence=self.confidence,
                seed=self.seed,
            )
        return Baseline(label=label, run=run, metrics=metrics, comparison=comparison)

    def _summary(self) -> dict[str, str]:
        info, meta = self.run.info, self.run.meta
        evo = mapping(info.get("evoaug"))
        dataset = (
            get(info, "dataset", "dataset_name")
            or get(meta, "dataset", "dataset_name")
            or (meta.get("dataset") if isinstance(meta.get("dataset"), str) else None)
        )
        model = " / ".join(str(v) for v in (info.get("model"), meta.get("model")) if v)
        groups = self.groups_source
        if self.sensitive_attribute:
            groups += f" ({self.sensitive_attribute})"
        fields: dict[str, object] = {
            "Run directory": str(self.run.run_dir),
            "Dataset": dataset,
            "Model": model,
            "Test samples": len(self.run.predictions) if self.run.predictions else None,
            "Fairness groups": groups,
            "Objectives": _objectives(evo) or None,
            "Selection rule": _readable(evo.get("selection")),
            "Population size": evo.get("population_size"),
            "Seed": evo.get("seed"),
            "Schedule": get(info, "schedule", "description"),
            "Command": info.get("command"),
            "Bootstrap": f"{self.n_bootstrap} resamples stratified by group, "
            f"{100 * self.confidence:g}% percentile intervals, seed {self.seed}",
        }
        return {k: str(v) for k, v in fields.items() if v is not None and v != ""}

    def to_dict(self) -> dict[str, Any]:
        """The numbers as plain JSON values (``report.json``)."""
        return {
            "format_version": FORMAT_VERSION,
            "evoaug_version": __version__,
            "run": {"label": self.label, "run_dir": str(self.run.run_dir)},
            "summary": dict(self.summary),
            "groups_source": self.groups_source,
            "sensitive_attribute": self.sensitive_attribute,
            "bootstrap": {
                "samples": self.n_bootstrap,
                "confidence": self.confidence,
                "seed": self.seed,
                "method": "percentile; resampled within each group (stratified)",
            },
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "baselines": [
                {
                    "label": b.label,
                    "run_dir": str(b.run.run_dir),
                    "metrics": b.metrics.to_dict() if b.metrics else None,
                    "comparison": b.comparison.to_dict() if b.comparison else None,
                }
                for b in self.baselines
            ],
            "search": self.search.to_dict() if self.search else None,
            "decisions": list(self.run.decisions),
            "policy": None
            if self.policy is None
            else {"source": self.policy.source, **self.policy.data},
            "findings": list(self.findings),
            "notes": list(self.notes),
            "versions": dict(self.versions),
        }


def build_report(
    run_dir: str | Path,
    *,
    baselines: Sequence[str | Path] = (),
    n_bootstrap: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Report:
    """Read a run directory (and baseline run directories) and compute the report.

    Args:
        run_dir: The run directory, ``<trainer log dir>/evoaug``.
        baselines: Run directories to compare against (e.g. the same recipe without search).
        n_bootstrap: Bootstrap resamples per interval.
        confidence: Level of the intervals.
        seed: Seed of the bootstrap and of the sample grid.

    Returns:
        The computed :class:`Report`.

    Raises:
        ConfigError: A directory is missing, or holds neither test predictions nor a history.

    """
    if isinstance(baselines, (str, Path)):
        raise ConfigError(f"`baselines` must be a list of run directories, got {baselines!r}")
    return Report(
        run=load_run(run_dir),
        baselines=[load_run(b) for b in baselines],
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )


def _objectives(evo: dict[str, Any]) -> str:
    """The configured objectives, fairness with its metric: "fairness (worst_group_gain)"."""
    metric = evo.get("fairness_metric")
    return ", ".join(
        f"{o} ({metric})" if o == "fairness" and metric else str(o)
        for o in evo.get("objectives", [])
    )
