"""How the guard's verdict moves with its look-ahead's length: could a guard stop half way?

Runs ``bench/quality.py`` (every argument after this script's own goes to it) with the guard
instrumented: before each guard's look-aheads at the callback's ``lookahead_steps`` (60), the
same guard runs again at each of ``--steps`` (same policies, same seeds: the shorter
look-aheads see the first minibatches of the full one), and the challenger's advantage over the
incumbent (the rule's decision score, with its paired bootstrap over validation images) is
recorded at every length. The extra look-aheads make each generation dearer, so a measured
budget pays for fewer of them than in a plain run: the guards recorded are real ones, not all
of a plain run's.

    python bench/guard_horizon.py --out guards.jsonl -- --datasets cifar10 --arms evoaug \
        --seeds 0 1 2 --flush-denormal --results /tmp/quality-guards.jsonl

Prints one row per guard: its advantage at each length (mean and the 10%-90% bootstrap
interval) and at the full length, and whether the challenger passed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import quality

import evoaug.callback._decide as decide


def advantage(rule: Any, first: Any, second: Any) -> dict[str, float]:
    """``first``'s advantage over ``second`` by the guard's own rule: mean, 10% and 90% bounds.

    The 90% bound is the 10% bound of ``second`` over ``first`` negated (the rule's bootstrap
    draws the same resamples for both orders).
    """
    low = rule.lookahead_advantage(first, second, confidence=0.9)
    high = rule.lookahead_advantage(second, first, confidence=0.9)
    return {"mean": low.mean, "q10": low.lower, "q90": -high.lower}


def instrument(steps: Sequence[int], out: Path, current: dict[str, Any]) -> None:
    """Wrap ``Decider._guard`` so that every guard also runs at each of ``steps``."""
    guard = decide.Decider._guard

    def measured(self: Any, module: Any, optimizer: Any, probes: Any, incumbent: Any,
                 challenger: Any, proposals: Any, seed: int, **kwargs: Any) -> Any:  # fmt: skip
        full = self.evaluator.lookahead_steps
        partial = {}
        for k in steps:
            self.evaluator.lookahead_steps = k
            try:
                pair = self._gather(
                    module, optimizer, probes, [incumbent, challenger], seed + 1,
                    repeats=self.config.guard_repeats,
                )  # fmt: skip
            finally:
                self.evaluator.lookahead_steps = full
            if all(ev.ok for ev in pair):
                partial[str(k)] = advantage(self.rule, pair[1], pair[0])
        decision = guard(self, module, optimizer, probes, incumbent, challenger, proposals, seed,
                         **kwargs)  # fmt: skip
        final = {k: {"mean": a.mean, "lower": a.lower} for k, a in decision.guard.items()}
        record = {
            **current, "challenger": challenger.name, "incumbent": incumbent.name,
            "steps": full, "passed": decision.changed, "full": final, "partial": partial,
        }  # fmt: skip
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return decision

    decide.Decider._guard = measured  # type: ignore[method-assign]


def table(out: Path) -> str:
    """One line per recorded guard."""
    rows = []
    for line in out.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if "incumbent" not in r["full"]:
            continue
        final = r["full"]["incumbent"]
        cells = " ".join(
            f"{k}: {a['mean']:+.3f} [{a['q10']:+.3f}, {a['q90']:+.3f}]"
            for k, a in r["partial"].items()
        )
        verdict = "passed" if r["passed"] else "refused"
        rows.append(
            f"{r.get('dataset', '?')} seed {r.get('seed', '?')} {r['challenger']}: {cells}; "
            f"{r['steps']}: {final['mean']:+.3f} (bound {final['lower']:+.3f}), {verdict}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> None:
    """Instrument the guard, run the quality suite, print the guards' trajectories."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 30, 40])
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, one per guard")
    parser.add_argument("quality_args", nargs=argparse.REMAINDER, help="after --: quality.py's")
    args = parser.parse_args(argv)
    current: dict[str, Any] = {}
    instrument(args.steps, args.out, current)
    fit_once = quality.fit_once

    def tagged(dataset: str, arm: str, seed: int, options: argparse.Namespace) -> Any:
        current.update(dataset=dataset, seed=seed)
        return fit_once(dataset, arm, seed, options)

    quality.fit_once = tagged
    forwarded = [a for a in args.quality_args if a != "--"]
    quality.main(forwarded)
    if args.out.exists():
        print(table(args.out))


if __name__ == "__main__":
    main(sys.argv[1:])
