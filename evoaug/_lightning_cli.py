"""``evoaug fit|validate|test|predict``: LightningCLI over evoaug's models and datamodules.

Recipes are ordinary LightningCLI configs (``trainer``, ``model``, ``data`` with ``class_path``
entries), overridable from the command line (``--trainer.max_epochs 3``). Two additions:

- ``--test_after_fit`` (default true): after ``fit``, run ``test`` on the final weights in the
  same log directory, so the run directory holds the test predictions the report reads.
- ``--report`` (default false): after that, write the fairness report into the run directory.

``class_path`` entries are trusted configuration, as in any LightningCLI config: they name Python
classes that get instantiated. Policy files, by contrast, are pure data.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities import rank_zero_info

from evoaug._run_layout import RUN_SUBDIR
from evoaug.callback import command_line
from evoaug.exceptions import EvoAugError, find_evoaug_error

__all__ = ["EvoAugCLI", "cli_arguments", "quiet_lightning_notices", "run_lightning_cli"]

# Lightning's loggers of rank-zero messages, in both namespaces.
_RANK_ZERO_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)


class _NoTips(logging.Filter):
    """Drop Lightning's advertisements ("💡 Tip: ... try installing litlogger")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


@contextmanager
def quiet_lightning_notices() -> Iterator[None]:
    """Within the block, Lightning's tips and a deprecation users cannot act on are not shown.

    Lightning logs advertisements for its cloud products at every fit, and warns that its own
    code uses a deprecated torch API (``LeafSpec``); neither says anything about the run. Both
    are filtered the ways Lightning leaves open to a caller: a logging filter on its rank-zero
    loggers and a warnings filter.
    """
    loggers = [logging.getLogger(name) for name in _RANK_ZERO_LOGGERS]
    tips = _NoTips()
    for logger in loggers:
        logger.addFilter(tips)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(tips)


@contextmanager
def cli_arguments() -> Iterator[None]:
    """Within the block, LightningCLI takes its arguments from ``args``, not ``sys.argv``.

    LightningCLI warns when ``sys.argv`` holds arguments as well, so it is cut to the program
    name; and Lightning's use of a jsonargparse API deprecated upstream, which users cannot act
    on, is not reported.
    """
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")
    saved_argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        yield
    finally:
        sys.argv = saved_argv


class EvoAugCLI(LightningCLI):
    """LightningCLI with evoaug's after-fit test and report steps."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add ``--test_after_fit`` and ``--report``."""
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="after fit, test the final weights and save predictions for the report",
        )
        parser.add_argument(
            "--report",
            type=bool,
            default=False,
            help="after fit (and test), write report.html/.md/.json into the run directory",
        )

    def _run_dir(self) -> Path:
        trainer = self.trainer
        return Path(trainer.log_dir or trainer.default_root_dir) / RUN_SUBDIR

    def after_fit(self) -> None:
        """Test the final weights, then write the report, as configured."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("test_after_fit", True) and not self.trainer.interrupted:
            self.trainer.test(self.model, datamodule=self.datamodule, verbose=False)
        run_dir = self._run_dir()
        if config.get("report", False) and self.trainer.is_global_zero:
            from evoaug.report import write_report

            try:
                paths = write_report(run_dir, out=run_dir / "report.html")
            except EvoAugError as err:  # the run succeeded; say why there is no report
                rank_zero_info(f"evoaug: no report: {err}")
            else:
                for line in result_lines(paths[2]):
                    print(line)
                print(f"evoaug: report {paths[0]}")
        if self.trainer.is_global_zero:
            print(f"evoaug: run directory {run_dir}")


def result_lines(report_json: Path) -> list[str]:
    """The run's result in two lines: test accuracy, and the worst group with its interval."""
    try:
        data = json.loads(report_json.read_text(encoding="utf-8"))
        metrics = data["metrics"]
        overall, worst = metrics["overall"], metrics["worst_group"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    lines = [f"evoaug: test accuracy {overall['accuracy']:.1%} on {overall['count']} images"]
    low, high = worst.get("accuracy_ci") or (None, None)
    interval = f" [{low:.1%}, {high:.1%}]" if low is not None and high is not None else ""
    lines.append(
        f"evoaug: worst group ({data.get('groups_source', 'groups')}) {worst['group']!r}: "
        f"{worst['accuracy']:.1%}{interval}"
    )
    return lines


def run_lightning_cli(argv: Sequence[str]) -> int:
    """Run a Lightning subcommand; return the exit status."""
    try:
        with cli_arguments(), quiet_lightning_notices(), command_line(["evoaug", *argv]):
            EvoAugCLI(
                subclass_mode_model=True,
                subclass_mode_data=True,
                args=list(argv),
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"prog": "evoaug"},
            )
    except SystemExit as err:  # jsonargparse exits on bad configs, with its own message
        return int(err.code) if isinstance(err.code, int) else 1
    except Exception as err:
        # Bad data paths, bad arguments: a message, not a traceback. jsonargparse wraps the
        # errors of the classes it instantiates (a recipe's callback or model arguments) in its
        # own ValueError; the evoaug error inside says what is wrong.
        cause = find_evoaug_error(err)
        if cause is None:
            raise
        print(f"evoaug: error: {cause}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(run_lightning_cli(sys.argv[1:]))
