"""The ``evoaug`` command.

Subcommands:

- ``evoaug fit|validate|test|predict --config recipes/X.yaml``: LightningCLI (see
  :mod:`evoaug._lightning_cli`), overridable from the command line.
- ``evoaug ops``: the op catalog with magnitude ranges.
- ``evoaug policy show SOURCE``: a readable table of a policy file or preset name.
- ``evoaug policy export SOURCE --to yaml|json|albumentations``: convert a policy.
- ``evoaug report RUN_DIR [--baseline RUN_DIR ...] [--out report.html]``: the fairness report.
- ``evoaug search --config RECIPE --generations G --budget-epochs E [...]``: the offline bilevel
  search, a fresh training per candidate (:mod:`evoaug.offline`).
- ``evoaug demo --out DIR``: augment scikit-learn's bundled digits with presets and write a sample
  grid and the policies (no download).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evoaug._files import atomic_write_text
from evoaug.exceptions import EvoAugError
from evoaug.ops import BUILTIN_OPS, available_ops, get_op
from evoaug.policy import Policy, presets, resolve_policy

__all__ = ["load_policy", "main"]


def load_policy(source: str) -> Policy:
    """A preset name, or a policy file (``.yaml``, ``.yml`` or ``.json``)."""
    return resolve_policy(source, argument="policy")


def _cmd_ops(args: argparse.Namespace) -> int:
    rows = [("op", "low", "high", "signed", "built-in", "description")]
    for name in available_ops():
        spec = get_op(name)
        rng = (f"{spec.low:g}", f"{spec.high:g}") if spec.has_magnitude else ("-", "-")
        rows.append(
            (
                name,
                *rng,
                "yes" if spec.signed else "",
                "yes" if name in BUILTIN_OPS else "",
                spec.description,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_policy_show(args: argparse.Namespace) -> int:
    policy = load_policy(args.source)
    print(policy)
    return 0


def _cmd_policy_export(args: argparse.Namespace) -> int:
    policy = load_policy(args.source)
    if args.to == "yaml":
        text = policy.to_yaml()
    elif args.to == "json":
        text = policy.to_json()
    else:
        import albumentations as A

        text = json.dumps(A.to_dict(policy.to_albumentations()), indent=2) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from evoaug.report import write_report

    paths = write_report(
        Path(args.run_dir),
        baselines=tuple(args.baseline),
        out=args.out,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from evoaug.offline import run_search_command

    return run_search_command(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from evoaug._demo import run_demo

    run_demo(Path(args.out), seed=args.seed)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evoaug", description="Evolutionary data augmentation for PyTorch Lightning."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fit", "validate", "test", "predict"):
        sub.add_parser(
            name, help=f"LightningCLI `{name}`: evoaug {name} --config RECIPE.yaml", add_help=False
        )

    ops = sub.add_parser("ops", help="list the op catalog with magnitude ranges")
    ops.set_defaults(func=_cmd_ops)

    policy = sub.add_parser("policy", help="show or convert a policy")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    show = policy_sub.add_parser("show", help="print a policy as a readable table")
    show.add_argument("source", help=f"policy file or preset ({', '.join(presets())})")
    show.set_defaults(func=_cmd_policy_show)
    export = policy_sub.add_parser("export", help="convert a policy to another format")
    export.add_argument("source", help="policy file or preset name")
    export.add_argument("--to", choices=("yaml", "json", "albumentations"), default="yaml")
    export.add_argument("--out", help="output file (default: standard output)")
    export.set_defaults(func=_cmd_policy_export)

    report = sub.add_parser("report", help="write the fairness report of a run directory")
    report.add_argument("run_dir", help="a run directory (<log dir>/evoaug)")
    report.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="RUN_DIR",
        help="a run to compare against (repeatable)",
    )
    report.add_argument("--out", help="report.html path (default: RUN_DIR/report.html)")
    report.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    report.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    report.set_defaults(func=_cmd_report)

    _add_search_parser(sub)

    demo = sub.add_parser("demo", help="augment the bundled digits and write a sample grid")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_cmd_demo)
    return parser


def _add_search_parser(sub: Any) -> None:
    search = sub.add_parser(
        "search",
        help="offline search: train a fresh model per candidate policy (docs: offline-search)",
    )
    search.add_argument("--config", required=True, help="recipe (LightningCLI YAML)")
    search.add_argument("--generations", type=int, required=True, help="generations G")
    search.add_argument("--budget-epochs", type=int, required=True, help="epochs per candidate E")
    search.add_argument("--population", type=int, help="P (default: the recipe callback's)")
    search.add_argument("--workers", type=int, default=2, help="candidates trained at once")
    search.add_argument("--surrogate", default="gp", help="gp | rf | none (default: gp)")
    search.add_argument("--pool-factor", type=float, default=4.0, help="children bred per P")
    search.add_argument("--keep-fraction", type=float, default=0.25, help="of those, trained")
    search.add_argument("--runner", default="process", help="process | ray | dask | serial")
    search.add_argument("--address", help="Ray or Dask cluster address (default: local)")
    search.add_argument("--connect-timeout", type=float, default=10.0, help="seconds")
    search.add_argument("--max-attempts", type=int, default=3, help="tries when workers die")
    search.add_argument("--out", help="output folder (default: runs/search/<recipe name>)")
    search.add_argument("--seed", type=int, help="seed (default: the recipe callback's)")
    search.add_argument("--resume", action="store_true", help="continue from --out's history")
    search.set_defaults(func=_cmd_search)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evoaug`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("fit", "validate", "test", "predict"):
        from evoaug._lightning_cli import run_lightning_cli

        return run_lightning_cli(argv)
    args = _parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except EvoAugError as err:
        print(f"evoaug: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as err:  # an output path that cannot be written (a folder, no permission)
        print(f"evoaug: error: {err}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
