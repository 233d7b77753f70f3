"""The callback's swap decision: gather the evidence the rule needs, then ask the rule.

After every generation the policy that trains (the incumbent) meets its challengers: the
front member the selection rule picks, the credit policies (the ops that score well alone) and,
when the incumbent is not identity, no augmentation. :class:`evoaug.search.EvidenceRule`
proposes one by paired gradient-alignment evidence; only then do the guard's look-aheads run
(the challenger and the incumbent, ``guard_repeats`` times each, and no augmentation when the
challenger beats the incumbent), and the rule decides. Every rank gathers the same evidence
with the same seeds, so every rank decides alike.

A challenger the guard refuses sits out the next :data:`REST` generations (its op too, for a
one-op credit policy), so that the next-best challengers get their look-ahead; this memory is
part of the callback's checkpoint state.

Once the model fits its clean training images and not its validation images (accuracy
``regularize_at`` or more on the training probe, ``regularize_gap`` less on the validation
probe, :func:`evoaug.evaluate.clean_correct_if_left_behind`; checked at every generation
and, between them, at every epoch end), the run has entered the regime where a regularizer pays
off over the epochs left and a short look-ahead sees only its cost. The ``regularizer`` setting
(TrivialAugment by default), added to the incumbent, is then adopted on that evidence, without
a look-ahead (after the op that covers the group left behind, when one is proposed: that op
goes first, and the regularizer comes in the same generation if the guard refuses it), and is
then on trial (:mod:`evoaug.callback._trial`): no augmentation and the front's pick are not
offered, and when the live model's validation-probe predictions are worse than at the
adoption (McNemar's exact test) once it fits its clean training probe again (or three quarters
of the epochs left have passed), the run goes back to the policy before it; otherwise the
regularizer stays.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F

from evoaug.callback._compose import added, policy_key, sized, within
from evoaug.callback._lightning import detached_trainer
from evoaug.callback._probes import ProbeSet
from evoaug.callback._schedule import FORWARD_COST
from evoaug.callback._settings import CallbackConfig
from evoaug.callback._trial import FOREVER, Fit, Trial, adopt, judge, measure_fit
from evoaug.evaluate import (
    Evaluator,
    Evidence,
    OptimizerSpec,
    gather_evidence,
)
from evoaug.genome import GenomeSpace
from evoaug.policy import Policy
from evoaug.search import (
    Advantage,
    Decision,
    EvidenceRule,
    coverage_policy,
    credit_ops,
    credit_policies,
    op_probe,
)

__all__ = ["REST", "Decider"]

REST = 3
"""Generations a challenger the guard refused sits out."""


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
        self.resting: dict[str, int] = {}  # refused challenger (its genes) -> generations left
        self.regularizer = within(config.regularizer, space.ops)
        self.trial: Trial | None = None

    def decide(
        self,
        module: Any,
        optimizer: OptimizerSpec,
        probes: ProbeSet,
        incumbent: Policy,
        front_pick: Policy | None,
        *,
        seed: int,
        planned: int = 1,
        epoch: int = 0,
        max_epochs: int = 0,
    ) -> tuple[Decision, dict[str, float]]:
        """The decision, and each op's mean alignment gain alone (empty without credit).

        Args:
            module: The live LightningModule (left exactly as it was).
            optimizer: The look-ahead's optimizer.
            probes: The fit's probes.
            incumbent: The policy training uses now.
            front_pick: The selection rule's pick of the front, if any.
            seed: The generation's seed (the evidence's common random numbers).
            planned: The generations the fit plans: the guards of challengers with only the
                look-ahead's evidence share the rule's error rate among them (Bonferroni).
            epoch: The epoch that just ended.
            max_epochs: The fit's epochs (0: unknown): a regularizer adopted now is judged
                three quarters of the epochs left later at the latest.
        """
        self._drop_stale_trial(incumbent)
        fit = self._fit(module, probes)
        if self._judging and fit is not None:
            verdict = self._trial_verdict(incumbent, fit, epoch, max_epochs)
            if verdict is not None:  # a generation that judges the regularizer does only that
                return verdict, {}
        # A regularizer adopted on the fit's evidence is only added to from then on (unless
        # its verdict drops it): no augmentation, or a policy without it, would only memorize
        # the training images.
        held = self.trial is not None
        # Off trial, the fit is measured only when the model is left behind (`measure_fit`).
        fits = fit is not None and not held
        regularizer = self._regularizer(incumbent, probes) if fits and not held else None
        # In priority order: dropping an incumbent that stopped helping, the op that covers the
        # group left behind, the ops that score well alone, the search's pick. Once the model
        # fits its training images, the regularizer comes after the op that covers a group.
        challengers = [] if incumbent == self.identity or held else [self.identity]
        # Challengers with evidence from outside the look-ahead keep the guard's margin: no
        # augmentation (the baseline itself, until the model fits its training images) and the
        # op that covers the group left behind (the feature-space evidence). Any other needs a
        # look-ahead bound above zero.
        supported = set() if fits or held else {policy_key(self.identity)}
        gains: dict[str, float] = {}
        if self.ops:
            covering, policies, gains = self._credited(module, optimizer, probes, incumbent, seed)
            if covering is not None:
                supported.add(policy_key(added(incumbent, covering)))
            found = ([] if covering is None else [covering]) + policies
            challengers += [added(incumbent, p) for p in found]
        if front_pick is not None and not held:  # the front's pick replaces the incumbent
            challengers.append(front_pick)
        challengers = self._not_resting(challengers)
        evidence = self._gather(module, optimizer, probes, [incumbent, *challengers], seed)
        if not evidence[0].ok:
            return self.rule.keep(incumbent, {}), gains
        proposed, proposals = self.rule.propose(evidence[0], evidence[1:])
        covers = proposed is not None and policy_key(proposed.policy) in supported
        if regularizer is not None and fit is not None and not covers:
            self.trial, adopted = adopt(incumbent, regularizer, fit, proposals, epoch, max_epochs)
            return adopted, gains
        if proposed is None:
            return self.rule.keep(incumbent, proposals), gains
        # The rule's margin and confidence for challengers with evidence from outside the
        # look-ahead; the others need a bound above zero at a confidence shared among the
        # fit's guards, so that a challenger that does nothing passes about as rarely in a
        # fit of ten generations as in a fit of one.
        margin: float | None = None
        guard_confidence: float | None = None
        if policy_key(proposed.policy) not in supported:
            margin = 0.0
            guard_confidence = 1 - (1 - self.config.confidence) / max(1, planned)
        decision = self._guard(
            module, optimizer, probes, incumbent, proposed.policy, proposals, seed,
            margin=margin, confidence=guard_confidence,
        )  # fmt: skip
        if not decision.changed and regularizer is not None and fit is not None:
            # The op that covers the group came before the regularizer and was refused: the
            # regularizer's turn now, not at the next epoch end.
            self.trial, adopted = adopt(incumbent, regularizer, fit, proposals, epoch, max_epochs)
            reason = f"{decision.reason}; {adopted.reason}"
            return dataclasses.replace(adopted, reason=reason), gains
        return decision, gains

    def _credited(
        self,
        module: Any,
        optimizer: OptimizerSpec,
        probes: ProbeSet,
        incumbent: Policy,
        seed: int,
    ) -> tuple[Policy | None, list[Policy], dict[str, float]]:
        """Every op scored alone: the covering op, the credit policies, each op's mean gain.

        The op that covers the group left behind and the policies of ops that score well
        alone (:func:`evoaug.search.coverage_policy`, :func:`evoaug.search.credit_policies`);
        ops that rest are not proposed.
        """
        singles = [op_probe(op, incumbent.interpolation) for op in self.ops]
        by_op = dict(
            zip(self.ops, self._gather(module, optimizer, probes, singles, seed), strict=True)
        )
        confidence, interpolation = self.config.confidence, incumbent.interpolation
        resting = {op for op in self.ops if policy_key(op_probe(op)) in self.resting}
        covering, _ = coverage_policy(
            by_op, confidence=confidence, interpolation=interpolation, exclude=resting
        )
        policies, credit = credit_policies(
            by_op, confidence=confidence, interpolation=interpolation, exclude=resting
        )
        return covering, policies, {op: mean for op, (mean, _) in credit.items()}

    def _not_resting(self, challengers: list[Policy]) -> list[Policy]:
        """One challenger per genes (the first, highest priority, names it), none that rests.

        Every rest is then one generation shorter.
        """
        unique: dict[str, Policy] = {}
        for challenger in challengers:
            if policy_key(challenger) not in self.resting:
                unique.setdefault(policy_key(challenger), challenger)
        self.resting = {k: n - 1 for k, n in self.resting.items() if n > 1}
        return list(unique.values())

    def check_fit(
        self,
        module: Any,
        probes: ProbeSet,
        incumbent: Policy,
        *,
        epoch: int,
        max_epochs: int = 0,
    ) -> Decision | None:
        """Between generations: the regularizer's adoption, or its trial's verdict.

        The model may come to fit its clean training images at any epoch, and the later the
        regularizer is adopted the less of the fit is left for it to pay off. The callback asks
        at every epoch end where no generation ran, once a generation has looked for an op
        that covers a group (that op comes first, and only a generation's evidence finds it).
        A forward pass over the training probe, stopped at the first chunk of 64 images (on the
        CPU) after which more are wrong than ``regularize_at`` allows (and over the validation
        probe when the training probe is fitted or a trial runs); no look-ahead.

        Args:
            module: The live LightningModule (left exactly as it was).
            probes: The fit's probes.
            incumbent: The policy training uses now.
            epoch: The epoch that just ended.
            max_epochs: The fit's epochs (0: unknown).

        Returns:
            The adoption, the trial's verdict (it stays, or the run goes back without it), or
            ``None``: no regularizer, its trial waits or is over, it rests, or the model's
            training probe is not fitted with its validation probe ``regularize_gap`` behind.
        """
        self._drop_stale_trial(incumbent)
        regularizer = None if self.trial is not None else self._regularizer(incumbent, probes)
        if not self._judging and regularizer is None:
            return None
        fit = self._fit(module, probes)
        if fit is None:
            return None
        if self._judging:
            return self._trial_verdict(incumbent, fit, epoch, max_epochs)
        if regularizer is None:  # not judging: a fit is measured only in the regime
            return None
        self.trial, adopted = adopt(incumbent, regularizer, fit, {}, epoch, max_epochs)
        return adopted

    @property
    def _judging(self) -> bool:
        """Whether a regularizer awaits its trial's verdict."""
        return self.trial is not None and not self.trial.judged

    def _drop_stale_trial(self, incumbent: Policy) -> None:
        """Forget the trial when the regularizer no longer trains (a resumed run, a custom swap)."""
        if self.trial is not None and not self._regularized(incumbent):
            self.trial = None

    def _guard(
        self,
        module: Any,
        optimizer: OptimizerSpec,
        probes: ProbeSet,
        incumbent: Policy,
        challenger: Policy,
        proposals: dict[str, dict[str, Advantage]],
        seed: int,
        *,
        margin: float | None,
        confidence: float | None,
    ) -> Decision:
        """The guard's look-aheads of the challenger, the incumbent and no augmentation.

        No augmentation's look-ahead runs only when the challenger beats the incumbent (and
        neither is no augmentation): a challenger the incumbent beats is refused whatever no
        augmentation scores. Its look-ahead has the same seeds alone as beside the others, so
        the decision is the one all three run together would give, at two look-aheads'
        cost for most refusals instead of three.
        """
        repeats = self.config.guard_repeats
        guarded = [incumbent, challenger]
        pair = self._gather(module, optimizer, probes, guarded, seed + 1, repeats=repeats)
        refused = self._guard_failure(pair, incumbent, challenger, proposals)
        if refused is not None:
            return refused
        confirm = functools.partial(
            self.rule.confirm, pair[0], pair[1], proposals=proposals, margin=margin,
            confidence=confidence,
        )  # fmt: skip
        decision = confirm(None)
        if decision.changed and self.identity not in guarded:
            plain = self._gather(
                module, optimizer, probes, [self.identity], seed + 1, repeats=repeats
            )
            refused = self._guard_failure(plain, incumbent, challenger, proposals)
            if refused is not None:
                return refused
            decision = confirm(plain[0])
        if not decision.changed:
            self._rest(challenger)
        return decision

    @staticmethod
    def _guard_failure(
        guard: list[Evidence],
        incumbent: Policy,
        challenger: Policy,
        proposals: dict[str, dict[str, Advantage]],
    ) -> Decision | None:
        """The incumbent stays when a guard look-ahead failed (``None`` when all ran)."""
        failed = next((ev for ev in guard if not ev.ok), None)
        if failed is None:
            return None
        reason = f"the guard could not score {failed.policy.name}: {failed.failure}"
        return Decision(incumbent, incumbent, challenger, False, reason, proposals)

    def _fit(self, module: Any, probes: ProbeSet) -> Fit | None:
        """:func:`~evoaug.callback._trial.measure_fit`; ``None`` without a regularizer."""
        if self.regularizer is None:
            return None
        cfg = self.config
        return measure_fit(
            module, probes, regularize_at=cfg.regularize_at, regularize_gap=cfg.regularize_gap,
            whole=self._judging, normalize=self.evaluator.normalize,
        )  # fmt: skip

    def _trial_verdict(
        self, incumbent: Policy, fit: Fit, epoch: int, max_epochs: int
    ) -> Decision | None:
        """The trial's verdict (:func:`~evoaug.callback._trial.judge`); ``None`` while it waits.

        A regularizer the verdict drops sits out the rest of the fit.
        """
        trial = self.trial
        if trial is None or trial.judged:
            return None
        cfg = self.config
        self.trial, verdict = judge(
            trial, fit, incumbent, epoch=epoch, max_epochs=max_epochs,
            regularize_at=cfg.regularize_at, confidence=cfg.confidence,
        )  # fmt: skip
        if verdict is not None and self.trial is None:
            self.resting[trial.key] = FOREVER
        return verdict

    def _regularized(self, policy: Policy) -> bool:
        """Whether ``policy`` has every op of the regularizer."""
        regularizer = self.regularizer
        return regularizer is not None and set(regularizer.ops) - {"Identity"} <= set(policy.ops)

    def _regularizer(self, incumbent: Policy, probes: ProbeSet) -> Policy | None:
        """The regularizer added to the incumbent, or ``None`` when it has it or it rests."""
        regularizer = self.regularizer
        if regularizer is None or self._regularized(incumbent):
            return None
        challenger = added(incumbent, sized(regularizer, probes.train.images.shape[-1]))
        return None if policy_key(challenger) in self.resting else challenger

    def _rest(self, policy: Policy) -> None:
        """``policy`` (and, for a one-op credit policy, that op) sits out the next generations."""
        self.resting[policy_key(policy)] = REST
        ops = {g.op for sub in policy.sub_policies for g in sub.genes}
        if len(ops) == 1 and len(policy.sub_policies) == 1:
            self.resting[policy_key(op_probe(next(iter(ops))))] = REST

    def state_dict(self) -> dict[str, int]:
        """The resting challengers (plain values, for checkpoints)."""
        return dict(self.resting)

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore :meth:`state_dict`."""
        self.resting = {str(k): int(v) for k, v in state.items()}

    def trial_state(self) -> dict[str, Any]:
        """The regularizer's trial (plain values, for checkpoints; empty without one)."""
        return {} if self.trial is None else self.trial.to_dict()

    def load_trial_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`trial_state`.

        Raises:
            ConfigError: The state is not one :meth:`trial_state` gives.
        """
        self.trial = Trial.from_dict(state) if state else None

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

        The credit scores every op alone and the proposal up to seven policies (forward passes
        over the alignment images, at :data:`FORWARD_COST`), and the guard's look-aheads, when
        a challenger is proposed, train the challenger and the incumbent ``guard_repeats``
        times each (and no augmentation too, when the challenger beats the incumbent and
        neither is no augmentation: rarer, and not priced).
        """
        ev, cfg = self.evaluator, self.config
        images = min(ev.alignment_size, cfg.train_probe_size)
        forwards = (len(self.ops) + 7) * images + cfg.val_probe_size
        if cfg.regularizer is not None:  # the clean passes over both probes
            forwards += cfg.train_probe_size + cfg.val_probe_size
        steps = ev.lookahead_steps * ev.batch_size
        scoring = cfg.val_probe_size + (ev.recalibration_size if ev.recalibrate_bn else 0)
        guard = 2 * cfg.guard_repeats * (steps + scoring * FORWARD_COST)
        return forwards * FORWARD_COST + guard
