"""The generation schedule: what a generation is priced at, and where generations go."""

from __future__ import annotations

import pytest

from evoaug import ConfigError
from evoaug.callback import plan_schedule
from evoaug.evaluate import Evaluator

RUN = {"max_epochs": 20, "batches_per_epoch": 157, "population_size": 16, "lookahead_steps": 20}


def test_a_generation_costs_its_lookahead_steps_and_scoring_passes() -> None:
    steps_only = plan_schedule(**RUN, search_budget=0.2, lookahead_batch_fraction=0.5)
    assert steps_only.cost_batches == 3 * 16 * 20 // 2  # 3 generations of P*k/2
    scored = plan_schedule(
        **RUN, search_budget=0.2, lookahead_batch_fraction=0.5, scoring_batch_fraction=3.0
    )
    assert scored.cost_batches == 3 * 16 * (10 + 3)
    assert "about 624 training-batch equivalents, 20% of the run's 3140" in scored.describe()


def test_repeats_multiply_the_price_exactly() -> None:
    long_run = {**RUN, "max_epochs": 100}  # 15,700 batches: the budget, not the floor, decides
    one = plan_schedule(**long_run, search_budget=0.5, scoring_batch_fraction=0.37)
    three = plan_schedule(**long_run, search_budget=0.5, scoring_batch_fraction=0.37, repeats=3)
    per_generation = round(16 * 20.37)
    assert one.total_generations == 7850 // per_generation == 24
    assert one.cost_batches == 24 * per_generation
    assert three.total_generations == 7850 // (3 * per_generation) == 8
    assert three.cost_batches == 8 * 3 * per_generation


def test_budget_generations_spread_after_the_warmup() -> None:
    plan = plan_schedule(
        max_epochs=10, batches_per_epoch=1000, population_size=10, lookahead_steps=10,
        search_budget=0.04, warmup_epochs=2,
    )  # fmt: skip
    # eligible: the ends of epochs 1-8; the first two thirds, 1-6, evenly
    assert plan.generations_at == {1: 1, 3: 1, 4: 1, 6: 1}
    assert plan.note == ""
    one = plan_schedule(
        max_epochs=10, batches_per_epoch=1000, population_size=10, lookahead_steps=10,
        search_budget=0.01, warmup_epochs=2,
    )  # fmt: skip
    assert one.generations_at == {4: 1}  # a single generation: the middle of epochs 1-6


def test_the_decision_is_priced_and_a_budget_too_small_says_what_would_pay() -> None:
    plan = plan_schedule(**RUN, search_budget=0.01, decision_batches=100.0)
    assert plan.total_generations == 0
    assert plan.describe() == (
        "evoaug: no generation scheduled. By the estimate the budget (1%) pays for no "
        "generation: one costs about 420 training batches, 13% of this run's 3140; "
        "search_budget=0.14 would pay for one (or train longer, or lower population_size)."
    )
    priced = plan_schedule(**RUN, search_budget=1.0, decision_batches=100.0)
    assert priced.cost_batches == priced.total_generations * (16 * 20 + 100) == 7 * 420


def test_min_generations_floor_is_explained() -> None:
    plan = plan_schedule(**RUN, search_budget=0.01, min_generations=2)
    assert plan.total_generations == 2
    assert "The budget (1%) pays for 0 generations; running min_generations=2." in plan.describe()


def test_no_epoch_after_the_warmup_means_no_generation() -> None:
    plan = plan_schedule(**{**RUN, "max_epochs": 1}, search_budget=0.2)
    assert plan.generations_at == {}
    assert "leaves none" in plan.describe()
    with pytest.raises(ConfigError, match=r"`warmup_epochs` must be at least 1, got 0"):
        plan_schedule(**RUN, search_budget=0.2, warmup_epochs=0)


def test_scoring_images_follow_the_objectives_and_probe_sizes() -> None:
    default = Evaluator()  # val 256 + recalibration 128 + difficulty's draw 128 + diversity's 64
    assert default.scoring_images(train_probe=512, val_probe=256) == 576
    assert default.scoring_images(train_probe=100, val_probe=50) == 50 + 100 + 100 + 64
    assert Evaluator(objectives=("accuracy",)).scoring_images(train_probe=512, val_probe=64) == (
        64 + 128
    )
    no_recal = Evaluator(objectives=("fairness",), recalibrate_bn=False)
    assert no_recal.scoring_images(train_probe=512, val_probe=64) == 64
    theta_only = Evaluator(objectives=("difficulty", "diversity"), diversity_size=200)
    assert theta_only.scoring_images(train_probe=512, val_probe=256) == 200 + 200


def test_the_budget_buys_every_whole_generation_despite_float_rounding() -> None:
    # 0.57 * 10,000 batches / 20 per generation is 285 exactly, 284.99999... in floats.
    plan = plan_schedule(
        max_epochs=10, batches_per_epoch=1000, population_size=4, lookahead_steps=5,
        search_budget=0.57,
    )  # fmt: skip
    assert plan.cost_batches == 285 * 20


def test_merged_shards_refuse_indices_outside_the_generation() -> None:
    from evoaug.callback._distributed import merge_shards
    from evoaug.exceptions import EvoAugError

    assert merge_shards(2, [[(1, "b")], [(0, "a")]]) == ["a", "b"]
    for stray in (5, -1):
        with pytest.raises(EvoAugError, match=rf"candidate {stray} of a generation of 2"):
            merge_shards(2, [[(0, "a"), (stray, "x")], [(1, "b")]])
