import csv

import pytest
import torch
import yaml

import evoaug
from evoaug import EvoAugCallback, Policy


def test_batch_mode_changes_what_the_model_sees(tmp_path, lt) -> None:
    invert = Policy.from_genes([[("Invert", 1.0, 0.0)]])
    cb = EvoAugCallback(initial_policy=invert, objectives=("accuracy",), **lt.SMALL)
    model = lt.TinyNet()
    train, val = lt.loaders()
    clean = torch.cat([x for x, _ in train])
    lt.trainer(tmp_path, [cb], max_epochs=1, limit_train_batches=2).fit(model, train, val)
    seen = model.seen[0]
    # every image the model trained on in epoch 0 is an inverted training image
    assert any(torch.allclose(seen[0], 1 - c, atol=1e-6) for c in clean)
    assert not any(torch.allclose(seen[0], c, atol=1e-6) for c in clean)


def test_run_writes_history_pareto_best_and_logs(tmp_path, lt) -> None:
    cb = EvoAugCallback(decision="front", **lt.SMALL)  # the front's pick trains: objectives
    model = lt.TinyNet()
    train, val = lt.loaders(groups=True)
    trainer = lt.trainer(tmp_path, [cb], max_epochs=3)
    trainer.fit(model, train, val)
    run_dir = tmp_path / "logs" / "version_0" / "evoaug"
    records, warnings = evoaug.search.read_history(run_dir / "history.jsonl")
    assert warnings == []
    assert [r["generation"] for r in records] == [0] * 4 + [1] * 4
    assert all(
        set(r["objectives"]) == {"accuracy", "difficulty", "diversity", "fairness"} for r in records
    )
    best = Policy.from_yaml(run_dir / "best_policy.yaml")
    assert best == cb.best_policy
    front = yaml.safe_load((run_dir / "pareto.yaml").read_text())
    assert len(front) == len(cb.pareto_front) >= 1
    assert cb.groups_source == "sensitive attribute"
    with open(tmp_path / "logs" / "version_0" / "metrics.csv") as handle:
        columns = next(csv.reader(handle))
    for name in (
        "evoaug/accuracy",
        "evoaug/fairness",
        "evoaug/hypervolume",
        "evoaug/front_size",
        "evoaug/generation",
    ):
        assert name in columns


def test_main_model_is_unaffected_by_evaluation(tmp_path, lt) -> None:
    """A run whose callback evaluates ends with the same weights as one that only trains."""
    identity = Policy.preset("identity")

    def run(every: int | None, out) -> dict:
        torch.manual_seed(0)
        model = lt.TinyNet()
        cb = EvoAugCallback(
            initial_policy=identity,
            objectives=("accuracy",),
            initial_presets=("identity",),
            **{**lt.SMALL, "min_generations": 0},
            every_n_epochs=every,
            selection=_KeepIdentity(),
        )
        train, val = lt.loaders()
        lt.trainer(out, [cb], max_epochs=2, limit_train_batches=3).fit(model, train, val)
        return {k: v.clone() for k, v in model.state_dict().items()}

    with_eval = run(1, tmp_path / "a")
    without = run(100, tmp_path / "b")
    for key in with_eval:
        assert torch.equal(with_eval[key], without[key]), key


class _KeepIdentity(evoaug.search.Selection):
    """Always keep training with identity, so only the evaluation differs between runs."""

    def select(self, front):  # type: ignore[override]
        return 0

    def _select(self, values, names):  # type: ignore[override]
        return 0


def test_fairness_sensitive_without_groups_fails_at_setup(tmp_path, lt) -> None:
    cb = EvoAugCallback(fairness_groups="sensitive", **lt.SMALL)
    train, val = lt.loaders(groups=False)
    with pytest.raises(evoaug.ConfigError, match="needs batches that carry group ids"):
        lt.trainer(tmp_path, [cb], max_epochs=2).fit(lt.TinyNet(), train, val)


def test_auto_groups_fall_back_to_classes(tmp_path, lt) -> None:
    cb = EvoAugCallback(**lt.SMALL)
    train, val = lt.loaders(groups=False)
    lt.trainer(tmp_path, [cb], max_epochs=2).fit(lt.TinyNet(), train, val)
    assert cb.groups_source == "classes"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"objectives": ("accuracy", "speed")},
            r"`objectives` must name registered objectives .* got unknown 'speed'",
        ),
        ({"population_size": 2}, r"`population_size` must be an int in \[4, 1024\], got 2"),
        ({"search_budget": -0.1}, r"`search_budget` must be a number in \[0, 10\], got -0.1"),
        ({"mode": "gpu"}, r"`mode` must be one of \['batch', 'dataset'\], got 'gpu'"),
        (
            {"fairness_groups": "race"},
            r"`fairness_groups` must be one of \['auto', 'sensitive', 'class'\]",
        ),
        ({"selection": "best"}, r"selection"),
        ({"initial_policy": 3}, r"`initial_policy` must be a preset name"),
        (
            {"normalize": (0.5,)},
            r"`normalize` must be None, 'datamodule', a callable, \(mean, std\)",
        ),
        (
            {"normalize": (0.5, 0.25)},
            r"`normalize` \(mean, std\): `mean` must be a sequence of numbers, one per channel, "
            r"got 0.5",
        ),
        (
            {"normalize": {"mean": (0.5,), "std": (float("nan"),)}},
            r"`normalize` \(mean, std\): `std` must hold finite numbers, got \[nan\]",
        ),
        (
            {"normalize": ((float("inf"),), (1.0,))},
            r"`normalize` \(mean, std\): `mean` must hold finite numbers, got \[inf\]",
        ),
        ({"initial_policy": "missing.json"}, r"policy file not found: 'missing.json'"),
        ({"warmup_epochs": 0}, r"`warmup_epochs` must be an int >= 1, got 0"),
        ({"lookahead_repeats": 0}, r"`lookahead_repeats` must be an int >= 1, got 0"),
        ({"regularize_at": 0.5}, r"`regularize_at` must be a number in \(0.5, 1\], got 0.5"),
        ({"regularize_gap": 1.0}, r"`regularize_gap` must be a number in \[0, 1\), got 1.0"),
        (
            {"train_probe_size": 4, "lookahead_batch_size": 8},
            r"`train_probe_size` must be an int >= 8",
        ),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(evoaug.ConfigError, match=message):
        EvoAugCallback(**kwargs)


def test_bad_batch_layout_names_what_it_found(tmp_path, lt) -> None:
    class Weird(lt.TinyNet):
        pass

    cb = EvoAugCallback(**lt.SMALL)
    data = [{"pixels": torch.rand(1, 8, 8), "y": 0} for _ in range(32)]
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    with pytest.raises(
        evoaug.InputError,
        match=r"batch has no image under key 'image'; found "
        r"\{'pixels': Tensor\(8, 1, 8, 8\):float32",
    ):
        lt.trainer(tmp_path, [cb], max_epochs=1).fit(Weird(), loader, loader)


def test_lookahead_repeats_reach_the_evaluator_and_the_schedule(tmp_path, lt) -> None:
    costs = {}
    for repeats in (1, 2):
        cb = EvoAugCallback(
            objectives=("accuracy",),
            lookahead_repeats=repeats,
            estimator="lookahead",
            decision="front",
            **lt.SMALL,
        )
        train, val = lt.loaders()
        trainer = lt.trainer(tmp_path / str(repeats), [cb], max_epochs=2, limit_train_batches=2)
        trainer.fit(lt.TinyNet(), train, val)
        assert cb._online.evaluator.repeats == repeats
        assert cb.generation == 2  # min_generations
        costs[repeats] = cb.schedule.cost_batches
    # P=4 candidates: k=3 steps of 8 images over training batches of 16, and the scoring
    # passes, the validation probe and the recalibration (32 images each) at a third of a step.
    assert costs[1] == 2 * round(4 * (3 * 8 / 16 + (32 + 32) / 3 / 16)) == 22
    assert costs[2] == 2 * round(2 * 4 * (3 * 8 / 16 + (32 + 32) / 3 / 16)) == 46  # r times


def test_interpolation_comes_from_the_initial_policy_or_overrides_it() -> None:
    nearest = Policy.preset("trivialaugment", interpolation="nearest")
    assert EvoAugCallback(initial_policy=nearest).space.interpolation == "nearest"
    assert EvoAugCallback().space.interpolation == "bilinear"
    cb = EvoAugCallback(initial_policy="trivialaugment", interpolation="nearest")
    assert cb.config.initial_policy.interpolation == "nearest"
    assert cb.slot.get().interpolation == "nearest"
    assert cb.augmenter.policy.interpolation == "nearest"
    back = EvoAugCallback(initial_policy=nearest, interpolation="bilinear")
    assert back.config.initial_policy.interpolation == "bilinear"
    assert back.config.initial_policy.sub_policies == nearest.sub_policies


def test_searched_policies_keep_the_callbacks_interpolation(tmp_path, lt) -> None:
    cb = EvoAugCallback(interpolation="nearest", objectives=("accuracy",), **lt.SMALL)
    train, val = lt.loaders()
    lt.trainer(tmp_path, [cb], max_epochs=3).fit(lt.TinyNet(), train, val)
    assert cb.generation >= 1
    assert cb.best_policy.interpolation == "nearest"
    run_dir = tmp_path / "logs" / "version_0" / "evoaug"
    assert Policy.from_yaml(run_dir / "best_policy.yaml").interpolation == "nearest"


def test_worst_group_gain_reaches_the_evaluator_and_the_history(tmp_path, lt) -> None:
    """The history holds the worst-group gain of each candidate: the same values as an
    Evaluator scoring the same candidates from the same weights, probes and seed."""
    import copy

    import pytorch_lightning as pl

    snapshots = []

    class Snapshot(pl.Callback):  # runs before EvoAugCallback's generation at each epoch end
        def on_train_epoch_end(self, trainer, pl_module):  # type: ignore[no-untyped-def]
            snapshots.append(copy.deepcopy(pl_module.state_dict()))

    settings = dict(
        objectives=("accuracy", "fairness"), estimator="lookahead", decision="front", **lt.SMALL
    )
    cb = EvoAugCallback(fairness_metric="worst_group_gain", **settings)
    train, val = lt.loaders(groups=True)
    trainer = lt.trainer(tmp_path, [Snapshot(), cb], max_epochs=2, limit_train_batches=2)
    trainer.fit(lt.TinyNet(), train, val)
    assert cb._online is not None and cb._probes is not None
    assert cb._online.evaluator.objectives["fairness"].metric == "worst_group_gain"
    records, _ = evoaug.search.read_history(
        tmp_path / "logs" / "version_0" / "evoaug" / "history.jsonl"
    )
    first = [r for r in records if r["generation"] == 0]
    assert len(records) == 8 and len(first) == 4  # 2 generations of 4 candidates (at epoch 0)
    model = lt.TinyNet()
    model.load_state_dict(snapshots[0])
    policies = [Policy.from_dict(r["policy"]) for r in first]

    def score(metric: str) -> list[float]:
        evaluator = evoaug.Evaluator(
            objectives=settings["objectives"],
            lookahead_steps=lt.SMALL["lookahead_steps"],
            batch_size=lt.SMALL["lookahead_batch_size"],
            fairness_metric=metric,
        )
        optimizer = evoaug.OptimizerSpec("sgd", lr=0.05, momentum=0.9)
        results = evaluator.evaluate(
            model,
            torch.nn.functional.cross_entropy,
            optimizer,
            cb._probes.train,
            cb._probes.val,
            policies,
            seed=0,
        )
        return [r.objectives["fairness"] for r in results]

    gains = score("worst_group_gain")
    assert [r["objectives"]["fairness"] for r in first] == pytest.approx(gains, abs=1e-6)
    assert gains != pytest.approx(score("worst_group_accuracy"))  # not the accuracy itself


def test_validation_probe_comes_from_validation_before_lightning_first_validates(
    tmp_path, lt
) -> None:
    """A generation at epoch 0 of a fit that first validates at epoch 1 (and skips the sanity
    check) must still draw its validation probe from the validation loader."""
    train, val = lt.loaders()
    cb = EvoAugCallback(every_n_epochs=1, **{**lt.SMALL, "min_generations": 0})
    trainer = lt.trainer(tmp_path, [cb], max_epochs=2, check_val_every_n_epoch=2)
    trainer.fit(lt.TinyNet(), train, val)
    assert cb.generation >= 1 and cb._probes is not None
    pool = {tuple(x.flatten().tolist()) for x, _ in val.dataset}
    probe = [tuple(x.flatten().tolist()) for x in cb._probes.val.images]
    assert probe and all(image in pool for image in probe)


def test_a_new_fit_into_the_same_directory_replaces_the_earlier_runs_files(
    tmp_path, lt, caplog
) -> None:
    """Without a logger every fit writes to <default_root_dir>/evoaug: a second, new fit must
    not append to the first one's history (its report would count both runs)."""
    import logging

    from evoaug import search

    def fit() -> EvoAugCallback:
        train, val = lt.loaders()
        cb = EvoAugCallback(every_n_epochs=1, **{**lt.SMALL, "min_generations": 0})
        lt.trainer(tmp_path, [cb], max_epochs=2, logger=False).fit(lt.TinyNet(), train, val)
        return cb

    first = fit()
    run_dir = first.run_dir
    assert run_dir is not None
    once, _ = search.read_history(run_dir / "history.jsonl")
    timeline_once = (run_dir / "timeline.jsonl").read_text(encoding="utf-8")
    with caplog.at_level(logging.INFO):
        fit()
    again, _ = search.read_history(run_dir / "history.jsonl")
    assert len(again) == len(once) > 0
    assert [r["generation"] for r in again] == [r["generation"] for r in once]
    assert len((run_dir / "timeline.jsonl").read_text(encoding="utf-8").splitlines()) == len(
        timeline_once.splitlines()
    )
    assert "held an earlier run's files (history.jsonl, timeline.jsonl, run.json" in caplog.text


def test_a_second_fit_with_the_same_callback_is_refused_and_keeps_its_files(tmp_path, lt) -> None:
    from evoaug import search

    train, val = lt.loaders()
    cb = EvoAugCallback(every_n_epochs=1, **{**lt.SMALL, "min_generations": 0})
    model = lt.TinyNet()
    lt.trainer(tmp_path, [cb], max_epochs=2, logger=False).fit(model, train, val)
    assert cb.run_dir is not None
    first, _ = search.read_history(cb.run_dir / "history.jsonl")
    assert first
    with pytest.raises(evoaug.ConfigError, match="has already run a fit.*ckpt_path"):
        lt.trainer(tmp_path, [cb], max_epochs=3, logger=False).fit(model, train, val)
    assert search.read_history(cb.run_dir / "history.jsonl")[0] == first
    assert "on_after_batch_transfer" not in vars(model)


def test_run_json_records_every_setting_that_shapes_the_run(tmp_path, lt) -> None:
    import dataclasses
    import inspect
    import json

    train, val = lt.loaders()
    cb = EvoAugCallback(
        every_n_epochs=1, normalize=((0.5,), (0.25,)), **{**lt.SMALL, "min_generations": 0}
    )
    lt.trainer(tmp_path, [cb], max_epochs=2, logger=False).fit(lt.TinyNet(), train, val)
    assert cb.run_dir is not None
    settings = json.loads((cb.run_dir / "run.json").read_text(encoding="utf-8"))["evoaug"]
    parameters = list(inspect.signature(EvoAugCallback.__init__).parameters)[1:]
    assert list(settings) == sorted(parameters)  # every setting, nothing else
    expected = {**lt.SMALL, "every_n_epochs": 1, "min_generations": 0}
    for name, parameter in inspect.signature(EvoAugCallback.__init__).parameters.items():
        if name == "self":
            continue
        given = expected.get(name, parameter.default)
        recorded = settings[name]
        if name == "normalize":
            assert recorded == "Normalize(mean=[0.5], std=[0.25])"
        elif name == "selection":
            assert recorded == repr(cb.selection) and recorded.startswith("Weights(")
        elif name == "initial_policy":
            assert recorded == "identity"
        elif name == "interpolation":
            assert recorded == "bilinear"  # the initial policy's, as resolved
        elif name == "batch_keys":
            assert recorded == {}
        elif name == "loss_fn":
            assert recorded is None
        else:
            plain = list(given) if isinstance(given, tuple) else given
            assert recorded == plain, name
    assert [f.name for f in dataclasses.fields(cb.config)] == parameters


def test_every_setting_is_documented_once_in_the_docstring() -> None:
    import inspect
    import re

    parameters = list(inspect.signature(EvoAugCallback.__init__).parameters)[1:]
    doc = inspect.getdoc(EvoAugCallback) or ""
    args = doc.split("Args:")[1].split("Example:")[0]
    documented = re.findall(r"^    (\w+):", args, flags=re.MULTILINE)
    assert documented == parameters
