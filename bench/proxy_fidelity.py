"""Does the cheap look-ahead score predict the real outcome? (issue 3, DESIGN.md "Objectives")

On colored digits (a 5% inverted minority in training, balanced test; or ``--dataset utkface``,
gender from faces with race as the groups), for fixed policies:

1. train the model with no augmentation to a mid-training checkpoint (``--checkpoint-epoch``);
2. score every policy there with the evaluator's look-ahead (k steps on an isolated copy,
   BatchNorm recalibrated, validation probe stratified by group): accuracy and the fairness
   objective (``--fairness-metric``: worst-group accuracy by default, or ``worst_group_gain``);
3. train with each policy to ``--epochs`` and test the model: accuracy and worst-group
   accuracy. ``--outcome scratch`` (default) trains a fresh model with the policy from epoch 0;
   ``--outcome continue`` resumes from the step-1 checkpoint with the policy, which is the
   decision the look-ahead informs when the callback swaps a policy in.

Steps 1-3 repeat for each seed. The table gives per-policy means over seeds, and the Spearman
rank correlation between look-ahead scores and test results (goal: at least 0.8 for both).
``--policies held-out`` swaps the eight policies for ten others, to check a finding on
policies it was not made on; ``--tests-cache`` keeps the full trainings between runs.

    python bench/proxy_fidelity.py --lookahead-seeds 8 --tests-cache /tmp/pf.json --write-docs
    python bench/proxy_fidelity.py --lookahead-seeds 8 --tests-cache /tmp/pf.json \
        --fairness-metric worst_group_gain --policies held-out
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import pytorch_lightning as pl
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).parent))
from _common import (
    command_line,
    extract_archive,
    machine_info,
    machine_markdown,
    markdown_table,
    write_docs_section,
)

from evoaug import EvoAugCallback, Policy
from evoaug.data import ColoredDigitsDataModule, UTKFaceDataModule
from evoaug.evaluate import Evaluator, OptimizerSpec, random_probe, stratified_probe
from evoaug.models import Classifier
from evoaug.objectives import FAIRNESS_METRICS
from evoaug.pipeline import Normalize

DOCS = Path(__file__).parents[1] / "docs" / "benchmarks.md"


def policies(which: str = "main", image_size: int = 16) -> dict[str, Policy]:
    """The fixed policies compared (``--policies``).

    ``main``: presets, with and without the op that helps the minority, and a harsh one.
    ``held-out``: ten other policies, written down before any of them was measured, to check
    on policies it was not chosen on a finding made with the main set (``worst_group_gain``).
    """
    g = Policy.from_genes
    if which == "held-out":
        return {
            "solarize half": g([[("Solarize", 0.5, 0.5)]]),
            "invert all": g([[("Invert", 1.0, 0.0)]]),
            "invert 0.2": g([[("Invert", 0.2, 0.0)]]),
            "cutout": g([[("Cutout", 0.5, 0.5)]]),
            "equalize + autocontrast": g([[("Equalize", 0.5, 0.0), ("AutoContrast", 0.5, 0.0)]]),
            "posterize+cutout+shear full": g(
                [[("Posterize", 1.0, 1.0), ("Cutout", 1.0, 1.0), ("ShearX", 1.0, 1.0)]]
            ),
            "colour mild": g(
                [[("Color", 0.5, 0.3), ("Contrast", 0.5, 0.3), ("Brightness", 0.5, 0.3)]]
            ),
            "flip + translate": g([[("HorizontalFlip", 0.5, 0.0), ("TranslateX", 0.5, 0.3)]]),
            "blur + noise": g([[("GaussianBlur", 0.5, 0.5), ("GaussianNoise", 0.5, 0.5)]]),
            "invert 0.5 + cutout": g([[("Invert", 0.5, 0.0), ("Cutout", 0.5, 0.5)]]),
        }
    return {
        "identity": Policy.preset("identity"),
        "trivialaugment": Policy.preset("trivialaugment", image_size=image_size),
        "autoaugment-cifar10": Policy.preset("autoaugment-cifar10"),
        "randaugment(2, 9)": Policy.preset("randaugment"),
        "invert 0.5": g([[("Invert", 0.5, 0.0)]]),
        "invert 0.5 + rotate": g([[("Invert", 0.5, 0.0), ("Rotate", 0.5, 0.1)]]),
        "rotate + shear (no invert)": g([[("Rotate", 0.5, 0.1), ("ShearX", 0.5, 0.2)]]),
        "harsh (solarize+posterize+cutout, full)": g(
            [[("Solarize", 1.0, 1.0), ("Posterize", 1.0, 1.0), ("Cutout", 1.0, 1.0)]]
        ),
    }


def _trainer(epochs: int, callbacks: list[pl.Callback], root: str) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, callbacks=callbacks,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=root, num_sanity_val_steps=0, deterministic=True,
    )  # fmt: skip


# Per dataset: image size and training batch (the quality benchmark's settings).
SIZES = {"colored-digits": (16, 64), "utkface": (32, 128)}


def _datamodule(seed: int, args: argparse.Namespace) -> ColoredDigitsDataModule | UTKFaceDataModule:
    size, batch = SIZES[args.dataset]
    if args.dataset == "utkface":
        parent = extract_archive(args.utkface_tar, args.cache, contains="crop_part1")
        return UTKFaceDataModule(
            root=str(parent / "crop_part1"), target="gender", sensitive="race",
            image_size=size, batch_size=batch, seed=seed,
        )  # fmt: skip
    return ColoredDigitsDataModule(image_size=size, batch_size=batch, seed=seed)


def lookahead_scores(
    seed: int,
    candidates: dict[str, Policy],
    args: argparse.Namespace,
    tmp: str,
    checkpoint: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Each policy's look-ahead scores at the checkpoint (saved to ``checkpoint`` if given)."""
    pl.seed_everything(seed, verbose=False)
    dm = _datamodule(seed, args)
    model = Classifier(model="small-cnn", lr=args.lr, scheduler="cosine")
    cb = EvoAugCallback(search=False, initial_policy="identity", normalize="datamodule")
    # Stop mid-training, on the learning-rate schedule of the full run.
    trainer = _trainer(args.epochs, [cb, _StopAfter(args.checkpoint_epoch)], tmp)
    trainer.fit(model, datamodule=dm)
    if checkpoint is not None:
        _save_without_callbacks(trainer, checkpoint)
    g = torch.Generator().manual_seed(seed)
    train = dm.train_dataloader().dataset.split
    val = dm.val_dataloader().dataset.split
    tx, ty = _unit(train.images), train.labels
    vx, vy, vg = _unit(val.images), val.labels, val.groups
    train_probe = random_probe(tx, ty, size=args.train_probe, generator=g)
    val_probe = stratified_probe(vx, vy, vg, size=256, generator=g)
    evaluator = Evaluator(
        objectives=("accuracy", "fairness"), lookahead_steps=args.lookahead_steps,
        batch_size=32, normalize=Normalize(*dm.normalization), repeats=args.lookahead_seeds,
        fairness_metric=args.fairness_metric, estimator=args.estimator,
        alignment_size=min(128, args.train_probe),
    )  # fmt: skip
    spec = OptimizerSpec.from_optimizer(trainer.optimizers[0])
    # Several look-ahead seeds per checkpoint, averaged (`Evaluator(repeats=...)`), as the
    # prototype in DESIGN.md did: one k-step look-ahead is a noisy estimate.
    results = evaluator.evaluate(
        model.network, model.loss_fn, spec, train_probe, val_probe, list(candidates.values()),
        seed=seed,
    )  # fmt: skip
    return {n: r.objectives for n, r in zip(candidates, results, strict=True)}


def _save_without_callbacks(trainer: pl.Trainer, path: Path) -> None:
    """A checkpoint to resume from with another policy: the callbacks' state (the identity
    policy) is dropped, so that the resumed run's ``initial_policy`` takes effect."""
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=False)
    state.pop("callbacks", None)
    torch.save(state, path)


def _unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0 if images.dtype == torch.uint8 else images


class _StopAfter(pl.Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def full_training(
    seed: int, policy: Policy, args: argparse.Namespace, tmp: str, resume: Path | None = None
) -> dict[str, float]:
    """Test results after training with ``policy`` to ``--epochs`` (from ``resume`` if given)."""
    pl.seed_everything(seed, verbose=False)
    dm = _datamodule(seed, args)
    model = Classifier(model="small-cnn", lr=args.lr, scheduler="cosine")
    cb = EvoAugCallback(search=False, initial_policy=policy, normalize="datamodule", seed=seed)
    trainer = _trainer(args.epochs, [cb], tmp)
    trainer.fit(model, datamodule=dm, ckpt_path=resume)
    (metrics,) = trainer.test(model, datamodule=dm, verbose=False)
    return {"accuracy": metrics["test_acc"], "worst_group": metrics["test_worst_group_acc"]}


def seed_agreement(per_policy: list[list[float]]) -> float | None:
    """How reproducible a ranking is across seeds: the median Spearman rho between two seeds.

    ``per_policy[i][s]`` is policy ``i``'s value at seed ``s``. Each pair of seeds ranks the
    policies once; the result is the median rho over the pairs, or ``None`` with fewer than two
    seeds. A proxy compared with means over seeds cannot be expected to agree with an outcome
    better than the outcome's single seeds agree with one another.
    """
    n_seeds = len(per_policy[0]) if per_policy else 0
    rhos = [
        spearmanr([v[a] for v in per_policy], [v[b] for v in per_policy]).statistic
        for a in range(n_seeds)
        for b in range(a + 1, n_seeds)
    ]
    return statistics.median(rhos) if rhos else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--checkpoint-epoch", type=int, default=3)
    parser.add_argument("--lookahead-steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--train-probe", type=int, default=512, help="training probe size")
    parser.add_argument("--policies", choices=("main", "held-out"), default="main")
    parser.add_argument(
        "--dataset", choices=tuple(SIZES), default="colored-digits",
        help="utkface: gender from face crops, race as the groups (../shared/data archive)",
    )  # fmt: skip
    parser.add_argument("--utkface-tar", default="../shared/data/utkface_crop_part1_jpg.tar.gz")
    parser.add_argument("--cache", default="~/.cache/evoaug-bench", help="where archives unpack")
    parser.add_argument(
        "--fairness-metric", choices=FAIRNESS_METRICS, default="worst_group_accuracy",
        help="the look-ahead fairness score compared with test worst-group accuracy",
    )  # fmt: skip
    parser.add_argument(
        "--outcome", choices=("scratch", "continue"), default="scratch",
        help="the full training each look-ahead is compared with: a fresh model trained with "
        "the policy, or the checkpoint's training continued with it",
    )  # fmt: skip
    parser.add_argument(
        "--lookahead-seeds", type=int, default=1,
        help="look-ahead seeds per checkpoint, scores averaged: Evaluator(repeats=...) "
        "(the prototype used 4)",
    )  # fmt: skip
    parser.add_argument(
        "--estimator",
        choices=("lookahead", "alignment"),
        default="lookahead",
        help="how accuracy and fairness are scored: Evaluator(estimator=...); 'alignment' is "
        "what the callback's search uses (gradient alignment gains, no look-ahead)",
    )
    parser.add_argument(
        "--tests-cache", type=Path, default=None,
        help="JSON file keeping the full trainings' test results, to compare look-ahead "
        "settings without retraining (delete it after changing evoaug)",
    )  # fmt: skip
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--section", default="proxy_fidelity", help="docs section to write")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the page to write it to")
    args = parser.parse_args(argv)
    info = machine_info()
    started = time.perf_counter()
    candidates = policies(args.policies, SIZES[args.dataset][0])
    names = list(candidates)
    scores: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    tests: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    cached: dict[str, dict[str, float]] = {}
    if args.tests_cache is not None and args.tests_cache.exists():
        cached = json.loads(args.tests_cache.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            resume = Path(tmp, f"seed{seed}.ckpt") if args.outcome == "continue" else None
            for name, values in lookahead_scores(seed, candidates, args, tmp, resume).items():
                scores[name].append(values)
            for name, policy in candidates.items():
                key = f"seed={seed} epochs={args.epochs} lr={args.lr} policy={name}"
                if args.dataset != "colored-digits":
                    key = f"dataset={args.dataset} {key}"
                if resume is not None:
                    key += f" from-epoch={args.checkpoint_epoch}"
                if key not in cached:
                    cached[key] = full_training(seed, policy, args, tmp, resume)
                    if args.tests_cache is not None:
                        args.tests_cache.write_text(json.dumps(cached, indent=1))
                tests[name].append(cached[key])
                print(f"seed {seed} {name}: {tests[name][-1]}", flush=True)

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return statistics.fmean(r[key] for r in rows)

    la_acc = [mean(scores[n], "accuracy") for n in names]
    la_fair = [mean(scores[n], "fairness") for n in names]
    te_acc = [mean(tests[n], "accuracy") for n in names]
    te_worst = [mean(tests[n], "worst_group") for n in names]
    rho_acc = spearmanr(la_acc, te_acc).statistic
    rho_worst = spearmanr(la_fair, te_worst).statistic
    rho_cross = spearmanr(la_fair, te_acc).statistic
    if args.estimator == "alignment":  # the gains of evaluate/_alignment.py, not a look-ahead
        acc_label, fair_label = "alignment gain (balanced)", "alignment gain (worst group)"
        horizon = "gradient alignment at the checkpoint (no look-ahead)"
    else:
        fair = args.fairness_metric.replace("_", " ")
        acc_label, fair_label = "look-ahead accuracy", f"look-ahead {fair}"
        horizon = (
            f"k={args.lookahead_steps}, {args.lookahead_seeds} look-ahead seed(s) per checkpoint"
        )
    rows = [
        [n, f"{a:.3f}", f"{f:.3f}", f"{ta:.3f}", f"{tw:.3f}"]
        for n, a, f, ta, tw in zip(names, la_acc, la_fair, te_acc, te_worst, strict=True)
    ]
    table = markdown_table(
        ["policy", acc_label, fair_label, "test accuracy", "test worst-group"], rows,
    )  # fmt: skip
    outcome = {
        "scratch": "after training from scratch",
        "continue": "after continuing from that checkpoint",
    }[args.outcome]
    verdict = (
        f"Spearman rho, {acc_label} vs test accuracy: **{rho_acc:.2f}**; {fair_label} vs test "
        f"worst-group: **{rho_worst:.2f}** (goal: at least 0.8 for both; "
        f"{'met' if min(rho_acc, rho_worst) >= 0.8 else 'not met'}); {fair_label} vs "
        f"test accuracy: {rho_cross:.2f}. {args.dataset}, means over seeds "
        f"{args.seeds}; scored at epoch {args.checkpoint_epoch} of {args.epochs}, "
        f"training probe {args.train_probe} images, test results {outcome}, {horizon}; "
        f"{time.perf_counter() - started:.0f} s in all."
    )
    agreement = {
        acc_label: seed_agreement([[r["accuracy"] for r in scores[n]] for n in names]),
        fair_label: seed_agreement([[r["fairness"] for r in scores[n]] for n in names]),
        "test accuracy": seed_agreement([[r["accuracy"] for r in tests[n]] for n in names]),
        "test worst-group": seed_agreement([[r["worst_group"] for r in tests[n]] for n in names]),
    }
    parts = [
        f"Measured with `{command_line(__file__, sys.argv[1:] if argv is None else argv)}`.",
        machine_markdown(info),
        table,
        verdict,
    ]
    if len(args.seeds) > 1:
        parts.append(
            "Agreement between seeds (median Spearman rho between two seeds' rankings of the "
            "policies): "
            + "; ".join(f"{name} {rho:.2f}" for name, rho in agreement.items() if rho is not None)
            + "."
        )
    text = "\n\n".join(parts)
    print(text)
    if args.write_docs:
        write_docs_section(args.docs, args.section, text)


if __name__ == "__main__":
    main()
