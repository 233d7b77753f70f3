"""The online search of one fit: generations scored on the live model, sharded across ranks.

Each generation NSGA-II proposes candidates (:class:`~evoaug.search.Search`), every rank scores
its slice on the live model (:class:`~evoaug.evaluate.Evaluator`: look-ahead on an isolated copy),
the results are all-gathered and told to the search in candidate order on every rank, and the
selection rule picks the policy the next epochs train with. The search state stays identical on
all ranks (checked by checksum after every generation).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from evoaug.callback._decide import Decider
from evoaug.callback._distributed import all_gather_objects, check_identical, merge_shards, shard
from evoaug.callback._lightning import detached_trainer
from evoaug.callback._probes import ProbeSet
from evoaug.callback._settings import CallbackConfig
from evoaug.evaluate import CandidateResult, Evaluator, OptimizerSpec
from evoaug.exceptions import ConfigError
from evoaug.genome import GenomeSpace
from evoaug.policy import Policy
from evoaug.search import Decision, Search, history_record

__all__ = ["ALIGNMENT_SIZE", "Generation", "OnlineSearch"]

ALIGNMENT_SIZE = 128
"""Training-probe images each policy's alignment gain averages over (candidates and credit)."""


@dataclass(frozen=True)
class Generation:
    """What one generation found.

    Attributes:
        index: The generation's number (0 for the first).
        records: One history record per candidate, in candidate order.
        chosen: The policy to train next, or ``None`` when the policy stays.
        objectives: The chosen policy's objectives when it is a front member (else empty).
        decision: The evidence rule's decision (``decision="evidence"``), else ``None``.
        credit: Each op's mean alignment gain alone (``credit=True``), else empty.
        failed: How many candidates failed.
        seconds: Wall time of the generation on this rank.
    """

    index: int
    records: list[dict[str, Any]]
    chosen: Policy | None
    objectives: dict[str, float]
    failed: int
    seconds: float
    decision: Decision | None = None
    credit: dict[str, float] = field(default_factory=dict)


class OnlineSearch:
    """NSGA-II over policies, scored on the live model, from the callback's settings.

    Args:
        config: The callback's validated settings.
        space: The genome space searched.
        normalize: Applied to images after augmentation, before the model (as in training).

    Attributes:
        search: The NSGA-II search (ask/tell; its state goes into checkpoints).
        evaluator: Scores candidates on the live model.
        generation: Generations run so far.
        front: The current Pareto front, ``(policy, objectives)`` pairs.
    """

    def __init__(
        self,
        config: CallbackConfig,
        space: GenomeSpace,
        *,
        normalize: Callable[[torch.Tensor], torch.Tensor] | None,
    ) -> None:
        self.config = config
        self.evaluator = Evaluator(
            objectives=config.objectives,
            lookahead_steps=config.lookahead_steps,
            batch_size=config.lookahead_batch_size,
            repeats=config.lookahead_repeats,
            feature_layer=config.feature_layer,
            fairness_metric=config.fairness_metric,
            normalize=normalize,
            estimator=config.estimator,
            alignment_size=ALIGNMENT_SIZE,
        )
        self.search = Search(
            space,
            config.objectives,
            population_size=config.population_size,
            seed=config.seed,
            initial_policies=space.fit_presets(config.initial_presets)[: config.population_size],
        )
        self.generation = 0
        self.front: list[tuple[Policy, dict[str, float]]] = []
        self.decider = (
            Decider(config, self.evaluator, space) if config.decision == "evidence" else None
        )

    def run(
        self,
        module: Any,
        optimizer: Any,
        probes: ProbeSet,
        *,
        incumbent: Policy,
        epoch: int,
        rank: int,
        world_size: int,
        planned: int = 1,
        max_epochs: int = 0,
    ) -> Generation:
        """Score one generation (this rank's shard), merge the shards, tell the search, decide.

        Args:
            module: The live LightningModule (left exactly as it was).
            optimizer: The training optimizer; the look-ahead uses its type and current rate.
            probes: The probes of this fit.
            incumbent: The policy training uses now.
            epoch: The training epoch the generation runs after (for the history).
            rank: This process's global rank.
            world_size: The number of ranks.
            planned: The generations the fit plans (the decision's guards share its error
                rate).
            max_epochs: The fit's epochs (0: unknown; a regularizer's trial lasts half of the
                epochs left).

        Raises:
            SearchStateMismatchError: The ranks' search states differ after the generation.
        """
        started = time.perf_counter()
        candidates = self.search.ask()
        mine = shard(len(candidates), rank, world_size)
        spec = OptimizerSpec.from_optimizer(optimizer)
        seed = self.config.seed * 1_000_003 + self.generation
        with detached_trainer(module):
            results = self.evaluator.evaluate(
                module,
                self.config.loss_fn or F.cross_entropy,
                spec,
                probes.train,
                probes.val,
                [candidates[i].policy for i in mine],
                seed=seed,
            )
        local = [(i, (r, rank)) for i, r in zip(mine, results, strict=True)]
        merged: list[tuple[CandidateResult, int]] = merge_shards(
            len(candidates), all_gather_objects(local)
        )
        self.search.tell([r.objectives if r.ok else None for r, _ in merged])
        check_identical(self.search.checksum())
        self.front = self.search.pareto_front()
        pick, objectives = None, {}
        index = self.config.selection.select(self.front) if self.front else None
        if index is not None:
            policy, values = self.front[index]
            label = f"evoaug generation {self.generation} front member {index}"
            pick, objectives = dataclasses.replace(policy, name=label), dict(values)
        chosen, decision = pick, None
        credit: dict[str, float] = {}
        if self.decider is not None:
            decision, credit = self.decider.decide(
                module, spec, probes, incumbent, pick, seed=seed + 500_009, planned=planned,
                epoch=epoch, max_epochs=max_epochs,
            )  # fmt: skip
            chosen = decision.chosen if decision.changed else None
            objectives = objectives if chosen is not None and chosen == pick else {}
        records = [
            history_record(
                generation=self.generation,
                epoch=epoch,
                rank=r_rank,
                candidate=c,
                objectives=r.objectives,
                failure=r.failure,
                seconds=r.seconds,
            )
            for c, (r, r_rank) in zip(candidates, merged, strict=True)
        ]
        outcome = Generation(
            index=self.generation,
            records=records,
            chosen=chosen,
            objectives=objectives,
            failed=sum(1 for r, _ in merged if not r.ok),
            seconds=time.perf_counter() - started,
            decision=decision,
            credit=credit,
        )
        self.generation += 1
        return outcome

    def check_fit(
        self, module: Any, probes: ProbeSet, incumbent: Policy, *, epoch: int, max_epochs: int = 0
    ) -> Decision | None:
        """Between generations: the regularizer's adoption or its trial's verdict.

        ``None`` without the evidence decision rule (see :meth:`Decider.check_fit`); the
        callback asks only once a generation has run.
        """
        if self.decider is None:
            return None
        return self.decider.check_fit(module, probes, incumbent, epoch=epoch, max_epochs=max_epochs)

    def decision_images(self) -> float:
        """What a generation's decision costs at most, in training images (0 without one)."""
        return 0.0 if self.decider is None else self.decider.cost_images()

    def candidate_steps(self) -> int:
        """Look-ahead steps one candidate's scoring trains (0 with alignment alone)."""
        ev = self.evaluator
        return ev.lookahead_steps if any(o.uses_lookahead for o in ev.objectives.values()) else 0

    def scoring_images(self) -> int:
        """Images one candidate's scoring forwards besides its look-ahead (for the schedule)."""
        return self.evaluator.scoring_images(
            train_probe=self.config.train_probe_size, val_probe=self.config.val_probe_size
        )

    @property
    def hypervolume(self) -> float | None:
        """The front's hypervolume after the last generation (``None`` before the first)."""
        history = self.search.hypervolume_history
        return history[-1] if history else None

    def resting(self) -> dict[str, int]:
        """The decision's memory of refused challengers (empty without a decision rule)."""
        return {} if self.decider is None else self.decider.state_dict()

    def trial(self) -> dict[str, Any]:
        """The decision's regularizer trial (empty without one)."""
        return {} if self.decider is None else self.decider.trial_state()

    def load_state_dict(
        self,
        generation: int,
        search: dict[str, Any] | None,
        resting: dict[str, int],
        trial: dict[str, Any] | None = None,
    ) -> None:
        """Continue from a checkpoint: generations run, the search, the decision's memory.

        Raises:
            ConfigError: The state does not fit this search (see :meth:`Search.load_state_dict`).
        """
        self.generation = generation
        if self.decider is not None:
            self.decider.load_state_dict(resting)
            self.decider.load_trial_state(trial or {})
        if search is not None:
            self.search.load_state_dict(search)
        self.front = self.search.pareto_front() if self.generation else []


def optimizer_of(trainer: Any) -> torch.optim.Optimizer:
    """The Trainer's first optimizer, which the look-ahead copies.

    Raises:
        ConfigError: The LightningModule configured no optimizer.
    """
    if not trainer.optimizers:
        raise ConfigError("EvoAugCallback needs the LightningModule to configure an optimizer")
    optimizer: torch.optim.Optimizer = trainer.optimizers[0]
    return optimizer
