"""The offline search's run directory, apart from the history: ``run.json`` and the outputs.

``run.json`` is read back and updated (settings, progress, hypervolume); ``pareto.yaml``,
``best_policy.yaml`` and ``surrogate.jsonl`` are rewritten after every generation, and
``out/config.yaml`` holds the recipe when the lower level came from one. Every file is written
atomically, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from evoaug._files import atomic_write_text
from evoaug._run_layout import BEST_POLICY_FILE, PARETO_FILE, RUN_FILE
from evoaug.policy import Policy
from evoaug.search import Selection, write_best_policy, write_pareto

__all__ = [
    "SURROGATE_FILE",
    "read_info",
    "run_info",
    "write_config",
    "write_front",
    "write_info",
    "write_surrogate_log",
]

SURROGATE_FILE = "surrogate.jsonl"


def read_info(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json``; empty when it is missing, unreadable or not a JSON object."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_info(run_dir: Path, update: Mapping[str, Any]) -> None:
    """Merge ``update`` into ``run.json``: a dict value updates the dict there, others replace."""
    info = read_info(run_dir)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(info.get(key), dict):
            info[key] = {**info[key], **value}
        else:
            info[key] = value
    text = json.dumps(info, indent=2, sort_keys=True, allow_nan=False, default=repr)
    atomic_write_text(run_dir / RUN_FILE, text + "\n")


def run_info(settings: Mapping[str, Any], prepared: Mapping[str, Any]) -> dict[str, Any]:
    """What ``run.json`` says of an offline search at its start, in the callback's fields.

    Args:
        settings: :meth:`~evoaug.offline.OfflineSearch.settings`.
        prepared: What the lower level's ``prepare`` recorded (dataset, recipe, ...).

    Returns:
        ``prepared`` with the ``evoaug``, ``schedule`` and ``offline`` entries added.

    """
    evo = {
        "objectives": settings["objectives"],
        "selection": settings["selection"],
        "population_size": settings["population_size"],
        "n_subpolicies": settings["n_subpolicies"],
        "n_genes": settings["n_genes"],
        "seed": settings["seed"],
        "mode": "offline",
    }
    description = (
        f"Offline search: {settings['generations']} generations; each candidate trained from "
        f"scratch for {settings['budget_epochs']} epochs; "
        + (
            f"surrogate {settings['surrogate']} trains {settings['n_offsprings']} of "
            f"{settings['pool_size']} children per generation."
            if settings["surrogate"] != "none"
            else f"{settings['n_offsprings']} children per generation, no surrogate."
        )
    )
    return {
        **dict(prepared),
        "evoaug": evo,
        "schedule": {"description": description},
        "offline": {"settings": dict(settings)},
    }


def write_config(out: Path, config: Mapping[str, Any]) -> None:
    """The recipe the lower level trains with, as ``out/config.yaml``."""
    text = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=None)
    atomic_write_text(out / "config.yaml", text)


def write_front(
    run_dir: Path,
    front: Sequence[tuple[Policy, Mapping[str, float]]],
    selection: Selection,
    generation: int,
) -> None:
    """``pareto.yaml``, and ``best_policy.yaml`` with the member ``selection`` picks from it."""
    write_pareto(run_dir / PARETO_FILE, front)
    if front:
        chosen = selection.select(front)
        policy, objectives = front[chosen]
        label = f"evoaug offline generation {generation} front member {chosen}"
        write_best_policy(
            run_dir / BEST_POLICY_FILE, dataclasses.replace(policy, name=label), objectives
        )


def write_surrogate_log(run_dir: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    """``surrogate.jsonl``: one line per generation the surrogate screened."""
    lines = "".join(json.dumps(e, allow_nan=False) + "\n" for e in entries)
    atomic_write_text(run_dir / SURROGATE_FILE, lines)
