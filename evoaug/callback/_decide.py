"""The callback's swap decision: gather the evidence the rule needs, then ask the rule.

After every generation the policy that trains (the incumbent) meets its challengers: the
front member the selection rule picks, the credit policy (the ops that score well alone) and,
when the incumbent is not identity, no augmentation. :class:`evoaug.search.EvidenceRule`
proposes one by paired gradient-alignment evidence; only then do the guard's look-aheads run
(the challenger, the incumbent and no augmentation, ``guard_repeats`` times each), and the rule
decides. Every rank gathers the same evidence with the same seeds, so every rank decides alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F

from evoaug.callback._lightning import detached_trainer
from evoaug.callback._probes import ProbeSet
from evoaug.callback._schedule import FORWARD_COST
from evoaug.callback._settings import CallbackConfig
from evoaug.evaluate import Evaluator, Evidence, OptimizerSpec, gather_evidence
from evoaug.genome import GenomeSpace
from evoaug.policy import Policy
from evoaug.search import Decision, EvidenceRule, credit_ops, credit_policies, op_probe

__all__ = ["Decider"]


class Decider:
    """Decides, after each generation, which policy trains next (``decision="evidence"``).

    Args:
        config: The callback's settings (confidence, guard margin and repeats, credit).
        evaluator: The search's evaluator (look-ahead settings, alignment size).
        space: The genome space (its ops are the credit's vocabulary).
    """

    def __init__(self, config: CallbackConfig, evaluator: Evaluator, space: GenomeSpace) -> None:
        self.config = config
        self.evaluator = evaluator
        self.rule = EvidenceRule(
            confidence=config.confidence, margin=config.guard_margin, seed=config.seed
        )
        self.ops = credit_ops(space.ops) if config.credit else []
        self.identity = Policy.preset("identity", interpolation=config.initial_policy.interpolation)

    def decide(
        self,
        module: Any,
        optimizer: OptimizerSpec,
        probes: ProbeSet,
        incumbent: Policy,
        front_pick: Policy | None,
        *,
        seed: int,
    ) -> tuple[Decision, dict[str, float]]:
        """The decision, and each op's mean alignment gain alone (empty without credit).

        Args:
            module: The live LightningModule (left exactly as it was).
            optimizer: The look-ahead's optimizer.
            probes: The fit's probes.
            incumbent: The policy training uses now.
            front_pick: The selection rule's pick of the front, if any.
            seed: The generation's seed (the evidence's common random numbers).
        """
        challengers = [] if front_pick is None else [front_pick]
        gains: dict[str, float] = {}
        if self.ops:
            singles = [op_probe(op, incumbent.interpolation) for op in self.ops]
            singles_ev = self._gather(module, optimizer, probes, singles, seed)
            policies, credit = credit_policies(
                dict(zip(self.ops, singles_ev, strict=True)),
                confidence=self.config.confidence,
                interpolation=incumbent.interpolation,
            )
            gains = {op: mean for op, (mean, _) in credit.items()}
            challengers += policies
        if incumbent != self.identity:
            challengers.append(self.identity)
        evidence = self._gather(module, optimizer, probes, [incumbent, *challengers], seed)
        if not evidence[0].ok:
            return self.rule.keep(incumbent, {}), gains
        proposed, proposals = self.rule.propose(evidence[0], evidence[1:])
        if proposed is None:
            return self.rule.keep(incumbent, proposals), gains
        guarded = [incumbent, proposed.policy]
        plain = self.identity not in guarded
        if plain:
            guarded.append(self.identity)
        guard = self._gather(
            module, optimizer, probes, guarded, seed + 1, repeats=self.config.guard_repeats
        )
        if not all(ev.ok for ev in guard):
            failed = next(ev for ev in guard if not ev.ok)
            reason = f"the guard could not score {failed.policy.name}: {failed.failure}"
            return Decision(incumbent, incumbent, proposed.policy, False, reason, proposals), gains
        identity = guard[2] if plain else None
        return self.rule.confirm(guard[0], guard[1], identity, proposals), gains

    def _gather(
        self,
        module: Any,
        optimizer: OptimizerSpec,
        probes: ProbeSet,
        policies: Sequence[Policy],
        seed: int,
        *,
        repeats: int = 0,
    ) -> list[Evidence]:
        with detached_trainer(module):
            return gather_evidence(
                self.evaluator,
                module,
                self.config.loss_fn or F.cross_entropy,
                optimizer,
                probes.train,
                probes.val,
                policies,
                seed=seed,
                alignment=repeats == 0,
                lookahead_repeats=repeats,
            )

    def cost_images(self) -> float:
        """What one decision costs at most, in training images (for the schedule).

        The credit scores every op alone and the proposal up to six policies (forward passes
        over the alignment images, at :data:`FORWARD_COST`), and the guard's look-aheads, when
        a challenger is proposed, train the challenger and the incumbent ``guard_repeats``
        times each (and no augmentation too, when neither is: rarer, and not priced).
        """
        ev, cfg = self.evaluator, self.config
        images = min(ev.alignment_size, cfg.train_probe_size)
        forwards = (len(self.ops) + 6) * images + cfg.val_probe_size
        steps = ev.lookahead_steps * ev.batch_size
        scoring = cfg.val_probe_size + (ev.recalibration_size if ev.recalibrate_bn else 0)
        guard = 2 * cfg.guard_repeats * (steps + scoring * FORWARD_COST)
        return forwards * FORWARD_COST + guard
