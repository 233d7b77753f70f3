"""A user's LightningCLI script, in either Lightning namespace, with the callback added from the
command line: fit, then test and predict from the best checkpoint (issue: the callback crashed
in `setup` with `ValueError: Expected a parent` in `lightning.pytorch` scripts).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "lightning_app.py"
INVERT = "format_version: 1\nsub_policies:\n- - {op: Invert, probability: 1.0, level: 0.0}\n"


def run_script(tmp_path: Path, namespace: str, *extra: str) -> dict[str, float]:
    pytest.importorskip(namespace, reason=f"{namespace} is not installed")
    policy = tmp_path / "invert.yaml"
    policy.write_text(INVERT, encoding="utf-8")
    args = [
        sys.executable, str(SCRIPT),
        "--trainer.callbacks+=evoaug.EvoAugCallback",
        f"--trainer.callbacks.initial_policy={policy}",
        "--trainer.callbacks.normalize=[[0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]",
        "--trainer.callbacks.population_size=4",
        "--trainer.callbacks.lookahead_steps=2",
        "--trainer.callbacks.train_probe_size=32",
        "--trainer.callbacks.lookahead_batch_size=16",
        "--trainer.callbacks.val_probe_size=32",
        "--trainer.callbacks.min_generations=1",
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={tmp_path}",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "LIGHTNING_NAMESPACE": namespace, "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    values = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("FIRST_TRAIN_MEAN", "TEST_MIN", "PREDICTED", "HOOKED"):
            values[key] = float(value)
    run_dir = tmp_path / "lightning_logs" / "version_0" / "evoaug"
    history = (run_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(history) == 4  # one generation of 4 candidates
    settings = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["evoaug"]
    assert settings["population_size"] == 4
    return values


def check_augmented_and_normalized(values: dict[str, float]) -> None:
    # The first training batch was inverted (clean images are dark: mean below 0.35), then
    # normalized with mean 0.5 and std 0.25: (1 - x - 0.5) / 0.25 has a positive mean.
    assert values["FIRST_TRAIN_MEAN"] > 0.5
    # Test batches were normalized, not augmented: dark pixels land below zero.
    assert values["TEST_MIN"] < -1.0
    assert values["PREDICTED"] == 48


@pytest.mark.parametrize("namespace", ["lightning.pytorch", "pytorch_lightning"])
def test_cli_script_with_the_callback_from_the_command_line(tmp_path, namespace) -> None:
    values = run_script(tmp_path, namespace)
    check_augmented_and_normalized(values)
    assert values["HOOKED"] == 0


def test_module_with_its_own_batch_hook_keeps_it(tmp_path) -> None:
    values = run_script(tmp_path, "lightning.pytorch", "--model.own_hook=true")
    check_augmented_and_normalized(values)
    # fit (train + val), test and predict batches all went through the module's own hook
    assert values["HOOKED"] >= 8 + 2 + 3 + 3


def test_dict_batches_with_named_keys(tmp_path) -> None:
    keys = '--trainer.callbacks.batch_keys={"image": "img", "label": "target"}'
    values = run_script(tmp_path, "pytorch_lightning", "--data.dict_batches=true", keys)
    check_augmented_and_normalized(values)
