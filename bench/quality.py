"""evoaug against fixed policies on real data: accuracy, worst-group accuracy, cost (issue 20).

For each dataset the same model is trained for the same epochs with each arm below, three seeds
each, and scored on the test split:

- ``none``: no augmentation;
- ``randaugment``: RandAugment(N=2, M=9);
- ``trivialaugment``: TrivialAugmentWide;
- ``autoaugment``: AutoAugment's CIFAR-10 policy;
- ``evoaug``: EvoAugCallback with its defaults (the evidence rule decides, alignment scoring);
- ablations, run when named in ``--arms``: ``evoaug-front`` (the front's pick trains after
  every generation, the rule before issue 20), ``evoaug-lookahead`` (candidates scored by
  look-ahead instead of alignment), ``evoaug-nocredit`` (no per-op credit challenger),
  ``evoaug-strict`` (the guard asks for a lower bound above zero), ``evoaug-acc``
  (accuracy alone), ``evoaug-noreg`` (no regularizer once the model fits its training images).

The datasets cover both regimes: where augmentation hurts (short runs on plenty of data) and
where it helps (``cifar10-small``: few images, many epochs, a wider network), and two group
shifts an op can undo: ``colored-digits`` (a rare inverted minority) and
``cifar10-upside-down`` (2% of training images and half of the test images upside down).

Every arm runs through the same pipeline (EvoAugCallback in batch mode, per-sample kernels; the
fixed arms with ``search=False``), so only the policy differs. Groups are the sensitive attribute
where the data has one (colored-digits: inverted or not; UTKFace: race) and the classes otherwise.
The search selects on the validation split only; the test split is read once, after training.

    python bench/quality.py --write-docs                 # the full suite, hours on 2 cores
    python bench/quality.py --quick                      # digits, one seed, a few minutes
    python bench/quality.py --datasets cifar10 --accelerator gpu --model resnet18 --epochs 30

Every finished fit is appended to ``--results`` (JSON lines) at once; a rerun with the same file
skips the fits already there, so an interrupted suite continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    DOCS_PAGE,
    command_line,
    extract_archive,
    machine_info,
    machine_markdown,
    markdown_table,
    write_docs_section,
)

from evoaug import EvoAugCallback, Policy
from evoaug.data import (
    ColoredDigitsDataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    LoadedData,
    Split,
    UTKFaceDataModule,
)
from evoaug.models import Classifier

ARMS = ("none", "randaugment", "trivialaugment", "autoaugment", "evoaug")
EXTRA_ARMS = (
    "evoaug-front", "evoaug-lookahead", "evoaug-nocredit", "evoaug-strict", "evoaug-acc",
    "evoaug-noreg", "evoaug-norest",
)  # fmt: skip
FIXED = ("none", "randaugment", "trivialaugment", "autoaugment")
DATASETS = (
    "digits", "colored-digits", "cifar10", "cifar10-upside-down", "utkface", "cifar10-small",
)  # fmt: skip
SHIFT_DATASETS = ("colored-digits", "cifar10-upside-down")  # an op can undo the shift
HELPS_DATASETS = ("cifar10-small",)  # the regime where augmentation helps


@dataclass(frozen=True)
class Setting:
    """How one dataset is trained: model, epochs, image size, batch, learning rate."""

    model: str
    epochs: int
    image_size: int
    batch_size: int
    lr: float
    fairness_groups: str  # what the callback's fairness objective uses
    width: int = 32  # the small CNN's
    limit_train: int | None = None  # overrides --limit-train


SETTINGS = {
    "digits": Setting("small-cnn", 15, 16, 64, 0.05, "class"),
    "colored-digits": Setting("small-cnn", 15, 16, 64, 0.05, "sensitive"),
    "cifar10": Setting("small-cnn", 10, 32, 128, 0.05, "class"),
    "cifar10-upside-down": Setting("small-cnn", 10, 32, 128, 0.05, "sensitive"),
    "utkface": Setting("small-cnn", 10, 32, 128, 0.05, "sensitive"),
    "cifar10-small": Setting("small-cnn", 60, 32, 128, 0.05, "class", 48, 2500),
}


@dataclass(frozen=True)
class Result:
    """One finished fit."""

    dataset: str
    arm: str
    seed: int
    test_acc: float
    worst_group_acc: float
    acc_gap: float
    fit_seconds: float
    generations: int
    policy: str
    cpu_seconds: float | None = None  # the fit's process CPU time (older results lack it;
    # on 2 shared cores it agreed with the wall time within 1-2%, busy or not)
    search_seconds: float | None = None  # what the callback's generations took (wall)


def _policy(arm: str, image_size: int) -> Policy:
    if arm == "none":
        return Policy.preset("identity")
    if arm == "randaugment":
        return Policy.preset("randaugment", num_ops=2, magnitude=9)
    if arm == "trivialaugment":
        return Policy.preset("trivialaugment", image_size=image_size)
    if arm == "autoaugment":
        return Policy.preset("autoaugment-cifar10")
    raise ValueError(f"`arm` must be one of {FIXED}, got {arm!r}")


class UpsideDownCIFAR(ImageFolderDataModule):
    """CIFAR-10 with a minority of upside-down images: 2% of training, half of val and test.

    Group 1 ("upside down") is the images turned by 180 degrees; the others are group 0. No
    fixed policy turns images that far (RandAugment and TrivialAugment rotate by 30 degrees at
    most); ``VerticalFlip`` undoes the shift (a horizontal flip away from a turn, and CIFAR's
    classes are mirror-invariant).
    """

    dataset_name = "cifar10-upside-down"
    FRACTIONS: ClassVar[dict[str, float]] = {"train": 0.02, "val": 0.5, "test": 0.5}

    def _load(self, generator: torch.Generator) -> LoadedData:
        data = super()._load(generator)
        self.sensitive_attribute = "orientation"
        splits = {}
        for name, fraction in self.FRACTIONS.items():
            split = getattr(data, name)
            turned = torch.rand(len(split), generator=generator) < fraction
            images = split.images.clone()
            images[turned] = images[turned].flip(-1, -2)
            splits[name] = Split(images, split.labels, turned.long())
        return replace(data, **splits, group_names=["upright", "upside down"])


def _datamodule(dataset: str, setting: Setting, seed: int, args: argparse.Namespace) -> Any:
    common = {"batch_size": setting.batch_size, "image_size": setting.image_size, "seed": seed}
    limit_train = setting.limit_train or args.limit_train
    if dataset == "digits":
        return DigitsDataModule(**common)
    if dataset == "colored-digits":
        return ColoredDigitsDataModule(
            attribute="invert", minority_fraction=0.05, correlation=0.8, **common
        )
    if dataset.startswith("cifar10"):
        root = extract_archive(args.cifar_tar, args.cache, contains="train")
        cls = UpsideDownCIFAR if dataset == "cifar10-upside-down" else ImageFolderDataModule
        return cls(root=str(root), limit_train=limit_train, limit_test=args.limit_test, **common)
    if dataset == "utkface":
        parent = extract_archive(args.utkface_tar, args.cache, contains="crop_part1")
        return UTKFaceDataModule(
            root=str(parent / "crop_part1"), target="gender", sensitive="race",
            limit_train=limit_train, limit_test=args.limit_test, **common,
        )  # fmt: skip
    raise ValueError(f"`dataset` must be one of {DATASETS}, got {dataset!r}")


ABLATIONS: dict[str, dict[str, Any]] = {
    "evoaug-front": {"decision": "front"},
    "evoaug-lookahead": {"estimator": "lookahead"},
    "evoaug-nocredit": {"credit": False},
    "evoaug-strict": {"guard_margin": 0.0},
    "evoaug-acc": {"objectives": ("accuracy",)},
    "evoaug-noreg": {"regularizer": None},
    "evoaug-norest": {"patience": None},
}


def _callback(arm: str, setting: Setting, seed: int, args: argparse.Namespace) -> EvoAugCallback:
    if arm in FIXED:
        return EvoAugCallback(
            search=False,
            initial_policy=_policy(arm, setting.image_size),
            normalize="datamodule",
            seed=seed,
        )
    search: dict[str, Any] = {
        "normalize": "datamodule",
        "fairness_groups": setting.fairness_groups,
        "seed": seed,
    }
    search.update(ABLATIONS.get(arm, {}))
    if args.budget is not None:
        search["search_budget"] = args.budget
    if args.population is not None:
        search["population_size"] = args.population
    if args.lookahead_steps is not None:
        search["lookahead_steps"] = args.lookahead_steps
    return EvoAugCallback(**search)


def fit_once(dataset: str, arm: str, seed: int, args: argparse.Namespace) -> Result:
    """Train one arm on one dataset with one seed and score it on the test split."""
    setting = _setting(dataset, args)
    pl.seed_everything(seed, verbose=False)
    datamodule = _datamodule(dataset, setting, seed, args)
    callback = _callback(arm, setting, seed, args)
    width = {"model_kwargs": {"width": setting.width}} if setting.model == "small-cnn" else {}
    model = Classifier(model=setting.model, lr=setting.lr, scheduler="cosine", **width)
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep_runs is not None:  # the run directory (decisions, timeline) is kept
            tmp = str(Path(args.keep_runs).expanduser() / f"{dataset}-{arm}-{seed}")
        trainer = pl.Trainer(
            max_epochs=setting.epochs, accelerator=args.accelerator, devices=1,
            precision=args.precision, logger=False, callbacks=[callback],
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            default_root_dir=tmp, num_sanity_val_steps=0, log_every_n_steps=50,
        )  # fmt: skip
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.fit(model, datamodule=datamodule)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        (metrics,) = trainer.test(model, datamodule=datamodule, verbose=False)
    groups = [value for key, value in metrics.items() if key.startswith("test_acc_group/")]
    return Result(
        dataset=dataset, arm=arm, seed=seed,
        test_acc=float(metrics["test_acc"]),
        worst_group_acc=float(metrics["test_worst_group_acc"]),
        acc_gap=float(max(groups) - min(groups)) if groups else 0.0,
        fit_seconds=seconds,
        generations=callback.generation,
        policy=callback.best_policy.name or arm,
        cpu_seconds=cpu,
        search_seconds=sum(callback.meter.generation_seconds),
    )  # fmt: skip


def _setting(dataset: str, args: argparse.Namespace) -> Setting:
    setting = SETTINGS[dataset]
    overrides = {
        key: value
        for key, value in (("epochs", args.epochs), ("model", args.model))
        if value is not None
    }
    if args.quick:
        overrides.setdefault("epochs", 4)
    return Setting(**{**asdict(setting), **overrides})


# ------------------------------------------------------------------------------ summary


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def _search_share(results: Sequence[Result]) -> str:
    """The median over seeds of the search's seconds over the rest of the fit's ("-" if none).

    Measured in the same process at the same time, both sides slow down alike when the
    machine is busy: a steadier figure of the search's cost than a ratio of two fits.
    """
    shares = [
        r.search_seconds / (r.fit_seconds - r.search_seconds)
        for r in results
        if r.search_seconds and r.fit_seconds > r.search_seconds
    ]
    return f"{statistics.median(shares):.0%}" if shares else "-"


def _pct(mean: float, std: float) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def summarize(
    results: Sequence[Result], epochs: dict[str, int] | None = None
) -> tuple[str, list[str]]:
    """The results table and one line per goal, saying whether it is met.

    Returns:
        ``(table, verdicts)``: a Markdown table with one row per dataset and arm (test accuracy,
        worst-group accuracy and accuracy gap as mean ± std over seeds, in percent; fit time as
        the median over seeds relative to TrivialAugmentWide's median, and the search's seconds
        over the rest of the fit), and the goal lines.
    """
    rows, verdicts = [], []
    for dataset in DATASETS:
        by_arm = {
            arm: [r for r in results if r.dataset == dataset and r.arm == arm]
            for arm in ARMS + EXTRA_ARMS
        }
        by_arm = {arm: rs for arm, rs in by_arm.items() if rs}
        if not by_arm:
            continue
        ta = by_arm.get("trivialaugment")
        ta_time = statistics.median(r.fit_seconds for r in ta) if ta else math.nan
        stats: dict[str, dict[str, tuple[float, float]]] = {}
        for arm, rs in by_arm.items():
            stats[arm] = {
                "acc": _mean_std([r.test_acc for r in rs]),
                "worst": _mean_std([r.worst_group_acc for r in rs]),
                "gap": _mean_std([r.acc_gap for r in rs]),
            }
            seconds = statistics.median(r.fit_seconds for r in rs)
            rows.append(
                [
                    dataset, arm, str(len(rs)),
                    _pct(*stats[arm]["acc"]), _pct(*stats[arm]["worst"]), _pct(*stats[arm]["gap"]),
                    f"{seconds:.0f}", f"{seconds / ta_time:.2f}x" if ta else "n/a",
                    _search_share(rs),
                ]
            )  # fmt: skip
        run_epochs = (epochs or {}).get(dataset, SETTINGS[dataset].epochs)
        verdicts += _verdicts(dataset, stats, by_arm, ta_time, run_epochs)
    headers = [
        "dataset", "arm", "seeds", "test accuracy %", "worst-group accuracy %",
        "accuracy gap (points)", "fit s (median)", "fit time vs TrivialAugment",
        "search / rest of fit",
    ]  # fmt: skip
    return markdown_table(headers, rows), verdicts


def _verdicts(
    dataset: str,
    stats: dict[str, dict[str, tuple[float, float]]],
    by_arm: dict[str, list[Result]],
    ta_time: float,
    epochs: int,
) -> list[str]:
    """The goals of issue 20 for one dataset, each line ending in ``met`` or ``NOT met``."""
    if "evoaug" not in stats:
        return []
    evo = stats["evoaug"]
    lines: list[str] = []

    def line(text: str, ok: bool) -> None:
        lines.append(f"{dataset}: {text}: {'met' if ok else 'NOT met'}")

    floor_arms = [a for a in ("none", "trivialaugment") if a in stats]
    for key, label in (("acc", "test accuracy"), ("worst", "worst-group accuracy")):
        if not floor_arms:
            break
        arm = max(floor_arms, key=lambda a: stats[a][key][0])
        floor = stats[arm][key][0]
        line(
            f"do no harm, evoaug mean {label} {100 * evo[key][0]:.1f}% vs the better of none and "
            f"TrivialAugment ({arm}) {100 * floor:.1f}% (goal: at most 0.5 below)",
            evo[key][0] >= floor - 0.005,
        )
        if key == "worst":
            # Paired by seed: a seed's floor is the better of the floor arms on that seed, so
            # that the baselines' own seed-to-seed spread does not count against evoaug.
            floors: dict[int, float] = {}
            for a in floor_arms:
                for r in by_arm[a]:
                    floors[r.seed] = max(floors.get(r.seed, 0.0), r.worst_group_acc)
            paired = [(r.worst_group_acc - floors[r.seed], r.seed) for r in by_arm["evoaug"]
                      if r.seed in floors]  # fmt: skip
            if paired:
                worst_gap, seed = min(paired)
                line(
                    f"do no harm, evoaug's worst seed ({seed}) worst-group accuracy "
                    f"{100 * worst_gap:+.1f} points against the better of none and "
                    "TrivialAugment on that seed (goal: at most 2 below)",
                    worst_gap >= -0.02,
                )
    fixed = [arm for arm in FIXED if arm in stats]
    if dataset in SHIFT_DATASETS and fixed:
        best_worst = max(fixed, key=lambda a: stats[a]["worst"][0])
        best_acc = max(fixed, key=lambda a: stats[a]["acc"][0])
        margin = 100 * (evo["worst"][0] - stats[best_worst]["worst"][0])
        line(
            f"group left behind, evoaug worst-group accuracy {margin:+.1f} points over the best "
            f"fixed policy ({best_worst}) (goal: +2.0)",
            margin >= 2.0,
        )
        gap = 100 * (evo["acc"][0] - stats[best_acc]["acc"][0])
        line(
            f"group left behind, evoaug test accuracy {gap:+.1f} points against the best fixed "
            f"policy ({best_acc}) (goal: at most 0.5 below)",
            gap >= -0.5,
        )
    if dataset in HELPS_DATASETS and {"none", "trivialaugment"} <= set(stats):
        lift = 100 * (stats["trivialaugment"]["acc"][0] - stats["none"]["acc"][0])
        line(
            f"augmentation helps here, TrivialAugment {lift:+.1f} points over none "
            "(goal: at least +2.0)",
            lift >= 2.0,
        )
        gap = 100 * (evo["acc"][0] - stats["trivialaugment"]["acc"][0])
        line(
            f"evoaug test accuracy {gap:+.1f} points against TrivialAugment (goal: its equal, "
            "at most 0.5 below)",
            gap >= -0.5,
        )
    if epochs >= 10 and not math.isnan(ta_time):
        ratio = statistics.median(r.fit_seconds for r in by_arm["evoaug"]) / ta_time
        line(
            f"evoaug fit time {ratio:.2f}x TrivialAugment's (goal: at most 1.25x, target 1.10x)",
            ratio <= 1.25,
        )
    return lines


# ------------------------------------------------------------------------------ results file


def load_results(path: Path) -> list[Result]:
    """Results already in ``path`` (JSON lines); a torn last line is ignored."""
    if not path.exists():
        return []
    results = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            results.append(Result(**json.loads(line)))
        except (json.JSONDecodeError, TypeError):
            continue
    return results


def append_result(path: Path, result: Result) -> None:
    """Append one result as a whole line, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(asdict(result)) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


# ------------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments; ``--quick`` fills in the quick suite's defaults."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    parser.add_argument("--arms", nargs="+", choices=ARMS + EXTRA_ARMS, default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="override every dataset's")
    parser.add_argument("--model", default=None, help="override every dataset's")
    parser.add_argument("--population", type=int, default=None, help="callback's; default 8")
    parser.add_argument("--lookahead-steps", type=int, default=None, help="callback's; default 60")
    parser.add_argument("--budget", type=float, default=None, help="callback's search_budget")
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--limit-test", type=int, default=2000)
    parser.add_argument("--cifar-tar", default="../shared/data/cifar10_jpg.tar.gz")
    parser.add_argument("--utkface-tar", default="../shared/data/utkface_crop_part1_jpg.tar.gz")
    parser.add_argument("--cache", default="~/.cache/evoaug-bench")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument(
        "--flush-denormal",
        action="store_true",
        help="flush subnormal floats to zero in every arm (unaugmented CPU training meets them)",
    )
    parser.add_argument("--results", type=Path, default=None, help="JSON lines, resumable")
    parser.add_argument(
        "--keep-runs", type=Path, default=None,
        help="keep each fit's run directory (decisions, timeline) under this folder",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="digits, one seed, 4 epochs")
    parser.add_argument(
        "--table-only", action="store_true", help="no fits: the table of the results file"
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--docs", type=Path, default=DOCS_PAGE)
    parser.add_argument("--section", default="quality", help="section of the docs page")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets = args.datasets or ["digits"]
        args.seeds = args.seeds or [0]
        args.population = args.population or 8
        args.lookahead_steps = args.lookahead_steps or 10
        args.budget = args.budget or 1.0  # 4 epochs: the default budget pays for no search
    args.datasets = args.datasets or list(DATASETS)
    args.seeds = args.seeds or [0, 1, 2]
    if args.results is None:
        name = "quality-quick.jsonl" if args.quick else "quality.jsonl"
        args.results = Path(args.cache).expanduser() / name
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run the suite (skipping fits already in the results file) and print the table."""
    args = parse_args(argv)
    info = machine_info()
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    torch.set_float32_matmul_precision("high")
    if args.flush_denormal and not torch.set_flush_denormal(True):
        raise SystemExit("--flush-denormal: this CPU cannot flush subnormal floats")
    done = {(r.dataset, r.arm, r.seed) for r in load_results(args.results)}
    for dataset in [] if args.table_only else args.datasets:
        for seed in args.seeds:  # arms interleaved within a seed: a busy moment hits all alike
            for arm in args.arms:
                if (dataset, arm, seed) in done:
                    continue
                result = fit_once(dataset, arm, seed, args)
                append_result(args.results, result)
                print(
                    f"{dataset:>14} {arm:>14} seed {seed}: test acc {100 * result.test_acc:.1f}%"
                    f", worst group {100 * result.worst_group_acc:.1f}%, "
                    f"{result.fit_seconds:.1f}s, {result.generations} generations",
                    flush=True,
                )
    wanted = set(args.datasets)
    results = [
        r
        for r in load_results(args.results)
        if r.dataset in wanted and r.arm in args.arms and r.seed in args.seeds
    ]
    table, verdicts = summarize(results, {d: _setting(d, args).epochs for d in args.datasets})
    settings = "; ".join(
        f"{d}: {s.model}, {s.epochs} epochs, {s.image_size}x{s.image_size}, batch {s.batch_size}"
        for d, s in ((d, _setting(d, args)) for d in args.datasets)
    )
    argv_text = list(sys.argv[1:] if argv is None else argv)
    text = "\n\n".join(
        [
            f"Measured with `{command_line(__file__, argv_text)}`"
            f" (seeds {', '.join(map(str, args.seeds))}; {settings}).",
            machine_markdown(info),
            table,
            "Goals:\n\n" + "\n".join(f"- {line}" for line in verdicts) if verdicts else "",
        ]
    )
    print(text)
    if args.write_docs:
        write_docs_section(args.docs, args.section, text)


if __name__ == "__main__":
    main()
