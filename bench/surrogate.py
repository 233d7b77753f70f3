"""Evaluations to reach a hypervolume, with and without the offline search's surrogate (issue 10).

The lower level is :class:`evoaug.offline.SyntheticObjectives` (accuracy and diversity as a smooth
function of op usage, plus noise), standing in for a training run so that many seeded searches fit
in minutes. Every arm runs the same :class:`evoaug.offline.OfflineSearch` (NSGA-II, all built-in
ops, K=5 sub-policies of L=2 genes, population P) and trains P candidates per generation; the
surrogate arms breed ``pool_factor * P`` children and train the quarter the surrogate ranks best.

Hypervolume is that of every candidate evaluated so far (the archive), in a space normalized once
per problem from 2000 random policies (0 = their best value, 1 = their worst), reference point
1.1. The target is a fraction of the best archive hypervolume any arm reached on that problem;
"evaluations" counts trainings until the first generation whose archive reaches it (runs that
never do count as the budget plus one generation, and the table says how many seeds reached it).
Medians over seeds; each seed is another problem and another search seed.

    python bench/surrogate.py --write-docs
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
from pymoo.indicators.hv import HV

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
from evoaug.offline import OfflineSearch, SerialRunner, SyntheticObjectives
from evoaug.search import read_history

OBJECTIVES = ("accuracy", "diversity")
TARGETS = (0.80, 0.90, 0.95)


def _bounds(lower: SyntheticObjectives, space: GenomeSpace) -> tuple[np.ndarray, np.ndarray]:
    """Best and worst values (minimization form) of 2000 random policies."""
    X = space.random(np.random.default_rng(12345), 2000)
    F = -np.array([list(lower.clean(space.decode(x)).values()) for x in X])
    return F.min(axis=0), F.max(axis=0)


def _archive_hv(
    history: list[dict], bounds: tuple[np.ndarray, np.ndarray]
) -> list[tuple[int, float]]:
    """``(evaluations so far, archive hypervolume)`` after each generation."""
    low, high = bounds
    indicator = HV(ref_point=np.full(len(OBJECTIVES), 1.1))
    out, points = [], []
    for generation in sorted({r["generation"] for r in history}):
        for r in history:
            if r["generation"] == generation and r["objectives"]:
                points.append([-r["objectives"][name] for name in OBJECTIVES])
        F = (np.array(points) - low) / (high - low)
        count = sum(1 for r in history if r["generation"] <= generation)
        out.append((count, float(indicator(F))))
    return out


def _run(arm: str, seed: int, args: argparse.Namespace) -> tuple[list[tuple[int, float]], float]:
    lower = SyntheticObjectives(OBJECTIVES, noise=args.noise, problem_seed=seed)
    space = GenomeSpace(n_subpolicies=5, n_genes=2)
    with tempfile.TemporaryDirectory() as out:
        search = OfflineSearch(
            lower,
            out=out,
            generations=args.generations,
            population_size=args.population,
            space=space,
            seed=seed,
            surrogate=arm,
            pool_factor=args.pool_factor,
            keep_fraction=1.0 / args.pool_factor,
        )
        start = time.perf_counter()
        search.run(SerialRunner())
        seconds = time.perf_counter() - start
        history, _ = read_history(Path(out) / "evoaug" / "history.jsonl")
    return _archive_hv(history, _bounds(lower, space)), seconds


def _needed(curve: list[tuple[int, float]], target: float, budget: int, step: int) -> int:
    for count, hv in curve:
        if hv >= target:
            return count
    return budget + step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--pool-factor", type=float, default=4.0)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--arms", default="none,rf,gp")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs", default=str(DOCS_PAGE))
    args = parser.parse_args(argv)
    logging.getLogger("evoaug").setLevel(logging.WARNING)
    arms = args.arms.split(",")
    curves: dict[str, list[list[tuple[int, float]]]] = {arm: [] for arm in arms}
    seconds: dict[str, list[float]] = {arm: [] for arm in arms}
    for seed in range(args.seeds):
        for arm in arms:  # interleaved, so a slow moment of the machine hits every arm
            curve, s = _run(arm, seed, args)
            curves[arm].append(curve)
            seconds[arm].append(s)
            print(f"seed {seed} {arm}: final archive hypervolume {curve[-1][1]:.4f} ({s:.1f} s)",
                  file=sys.stderr)  # fmt: skip
    budget = args.population * args.generations
    rows = []
    for arm in arms:
        needed = {t: [] for t in TARGETS}
        for seed in range(args.seeds):
            best = max(curves[a][seed][-1][1] for a in arms)
            for t in TARGETS:
                needed[t].append(_needed(curves[arm][seed], t * best, budget, args.population))
        finals = [c[-1][1] for c in curves[arm]]
        label = {"none": "none (NSGA-II only)", "rf": "random forest", "gp": "Gaussian process"}
        rows.append(
            [label.get(arm, arm)]
            + [
                f"{statistics.median(needed[t]):g} ({sum(n <= budget for n in needed[t])}/"
                f"{args.seeds})"
                for t in TARGETS
            ]
            + [f"{statistics.median(finals):.4f}", f"{statistics.median(seconds[arm]):.1f}"]
        )
    header = (
        ["surrogate"]
        + [f"evaluations to {int(t * 100)}% HV" for t in TARGETS]
        + [f"archive HV after {budget}", "search s (median)"]
    )
    table = markdown_table(header, rows)
    info = machine_info()
    text = "\n".join(
        [
            "### Offline search: surrogate pre-screening",
            "",
            f"Measured with `{command_line(__file__, sys.argv[1:] if argv is None else argv)}`: "
            f"synthetic lower level ({', '.join(OBJECTIVES)}, noise {args.noise}), all "
            f"{len(GenomeSpace().ops)} built-in ops, K=5, L=2, P={args.population}, "
            f"{args.generations} generations ({budget} evaluations), surrogate arms breed "
            f"{args.pool_factor:g} x P children and train P; medians over {args.seeds} seeds "
            "(each another problem). Targets are fractions of the best archive hypervolume any "
            "arm reached on that problem; a run that never reaches one counts "
            f"{budget + args.population}. In parentheses: how many seeds reached the target.",
            "",
            table,
            "",
            "Search seconds include the surrogate's fits and predictions (the synthetic "
            "evaluations themselves take about a millisecond); with a real lower level a "
            "candidate costs minutes and this overhead vanishes.",
            "",
            machine_markdown(info),
        ]
    )
    print(text)
    if args.write_docs:
        write_docs_section(args.docs, "surrogate", text)


if __name__ == "__main__":
    main()
