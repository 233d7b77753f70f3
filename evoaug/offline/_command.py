"""``evoaug search``: the command-line front of :class:`~evoaug.offline.OfflineSearch`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from evoaug.offline._dispatch import make_runner
from evoaug.offline._search import OfflineSearch
from evoaug.offline._trainer import RecipeTrainer

__all__ = ["run_search_command"]

_INTERRUPTED = 130  # the shell's status for SIGINT


def _configure_logging() -> None:
    logger = logging.getLogger("evoaug.offline")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("evoaug search: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def run_search_command(args: argparse.Namespace) -> int:
    """Run ``evoaug search`` with parsed arguments; the exit status.

    Every argument is checked (and a cluster address must answer) before any training starts.

    Raises:
        ConfigError: A bad argument, recipe, address or run directory (``main`` prints it).

    """
    lower = RecipeTrainer(args.config, budget_epochs=args.budget_epochs, seed=args.seed)
    out = Path(args.out) if args.out else Path("runs") / "search" / Path(args.config).stem
    search = OfflineSearch(
        lower,
        out=out,
        generations=args.generations,
        population_size=args.population,
        surrogate=args.surrogate,
        pool_factor=args.pool_factor,
        keep_fraction=args.keep_fraction,
        max_attempts=args.max_attempts,
    )
    _configure_logging()
    with make_runner(
        args.runner,
        workers=args.workers,
        address=args.address,
        connect_timeout=args.connect_timeout,
    ) as runner:
        try:
            front = search.run(runner, resume=args.resume)
        except KeyboardInterrupt:
            print(
                f"evoaug: interrupted; every finished candidate is in "
                f"{search.run_dir / 'history.jsonl'}. Continue with the same command and "
                "--resume",
                file=sys.stderr,
            )
            return _INTERRUPTED
    print(f"evoaug: {search.n_evaluated} candidates trained; front of {len(front)}")
    print(f"evoaug: best policy {search.run_dir / 'best_policy.yaml'}")
    print(f"evoaug: run directory {search.run_dir} (evoaug report {out})")
    return 0
