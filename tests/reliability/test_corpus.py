"""The bad-input corpus: every malformed file under corpus/ gives a clear evoaug error that names
what is wrong, or a documented graceful handling; none a traceback from inside torch, and no YAML
ever constructs an object.

``corpus/expected.yaml`` maps each file to ``{error: <exception name>, match: <substring>}``,
``{exit: <status>, match: <substring of stderr>}`` (recipes, run through ``evoaug fit``) or
``{graceful: <what happens instead>}``. Data files describe tensors in YAML (see ``_value``).
"""

from __future__ import annotations

import contextlib
import io
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import evoaug
from evoaug import EvoAugCallback, Policy, exceptions
from evoaug.callback._batch import BatchLayout
from evoaug.cli import main
from evoaug.evaluate import Evaluator, OptimizerSpec, Probe, stratified_probe

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
FILES = sorted(
    str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*") if p.suffix in (".yaml", ".json")
)
ERRORS = {name: getattr(exceptions, name) for name in exceptions.__all__} | {"TypeError": TypeError}
SIDE_EFFECT = "PWNED"  # what the python tags in the corpus would create if constructed


def test_corpus_is_indexed_and_large_enough() -> None:
    assert sorted(EXPECTED) == FILES
    kinds = {name.split("/")[0] for name in FILES}
    assert kinds == {"policies", "recipes", "callback", "data"}
    assert len(FILES) >= 30
    for name, entry in EXPECTED.items():
        assert ("graceful" in entry) != ("match" in entry), name


# ---------------------------------------------------------------- tensors from YAML


def _tensor(spec: dict[str, Any]) -> torch.Tensor:
    dtype = getattr(torch, spec.get("dtype", "float32" if "mod" not in spec else "int64"))
    if "values" in spec:
        return torch.tensor(spec["values"], dtype=None if "dtype" not in spec else dtype)
    shape = spec["shape"]
    if "fill" in spec:
        return torch.full(shape, float(spec["fill"]), dtype=dtype)
    if "mod" in spec:
        return (torch.arange(int(torch.tensor(shape).prod())) % spec["mod"]).view(shape).to(dtype)
    g = torch.Generator().manual_seed(0)
    low, high = spec["low"], spec["high"]
    return (low + (high - low) * torch.rand(shape, generator=g)).to(dtype)


def _value(value: Any) -> Any:
    """``{tensor: spec}`` becomes a tensor; lists and mappings are converted inside."""
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return _tensor(value["tensor"])
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


class _TinyNet(pl.LightningModule):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _run_data(case: dict[str, Any], tmp_path: Path) -> Any:
    target = case["target"]
    data = {k: _value(v) for k, v in case.items() if k != "target"}
    if target == "policy":
        policy = Policy.from_genes(data["policy"])
        images = data["images"]
        out = policy(images, generator=torch.Generator().manual_seed(0))
        return {"unchanged": torch.equal(out, images)}
    if target == "probe":
        return Probe(data["images"], data["labels"], data.get("groups"))
    if target == "stratified_probe":
        g = torch.Generator().manual_seed(0)
        return stratified_probe(
            data["images"], data["labels"], data["groups"], size=data["size"], generator=g
        )
    if target == "batch_layout":
        return BatchLayout.infer(data["batch"], data.get("batch_keys"))
    if target == "evaluator":
        probe = Probe(data["images"], data["labels"], data["labels"])
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, data["classes"]))
        evaluator = Evaluator(lookahead_steps=2, batch_size=16)
        spec = OptimizerSpec("sgd", 0.1)
        policies = [Policy.preset("identity")]
        return evaluator.evaluate(model, F.cross_entropy, spec, probe, probe, policies, seed=0)
    if target == "fit":
        kwargs = dict(population_size=4, lookahead_steps=2, lookahead_batch_size=8)
        kwargs.update(train_probe_size=16, val_probe_size=8, every_n_epochs=1, seed=0)
        callback = EvoAugCallback(**{**kwargs, **data["callback"]})
        trainer = pl.Trainer(
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
            callbacks=[callback],
        )
        loader = DataLoader(TensorDataset(data["images"], data["labels"]), batch_size=8)
        trainer.fit(_TinyNet(), loader)
        return trainer
    raise AssertionError(f"unknown target {target!r}")


# ---------------------------------------------------------------- one test over the corpus


def _load(name: str, tmp_path: Path) -> Any:
    path = CORPUS / name
    kind = name.split("/")[0]
    if kind == "policies":
        return Policy.from_json(path) if path.suffix == ".json" else Policy.from_yaml(path)
    if kind == "callback":
        return EvoAugCallback(**yaml.safe_load(path.read_text()))
    if kind == "data":
        return _run_data(yaml.safe_load(path.read_text()), tmp_path)
    raise AssertionError(f"unknown corpus folder {kind!r}")


def _raised_inside_evoaug(err: BaseException) -> bool:
    frames = traceback.extract_tb(err.__traceback__)
    package = str(Path(evoaug.__file__).parent)
    return bool(frames) and frames[-1].filename.startswith(package)


def _run_recipe(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(["fit", "--config", str(CORPUS / name)])
        except SystemExit as err:  # only --help exits; a bad recipe must return a status
            raise AssertionError(f"{name}: SystemExit({err.code}) instead of a status") from err
    return status, capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*does not have many workers.*")
@pytest.mark.parametrize("name", FILES)
def test_bad_input_gives_a_clear_error_or_documented_handling(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = EXPECTED[name]
    monkeypatch.chdir(tmp_path)  # relative paths in recipes and python tags land here
    monkeypatch.setattr("sys.argv", ["evoaug"])
    if "exit" in expected:
        status, err = _run_recipe(name, capsys)
        assert status == expected["exit"], err[-2000:]
        assert expected["match"] in err, err[-2000:]
        assert "Traceback" not in err
    elif "graceful" in expected:
        result = _load(name, tmp_path)
        for key, value in expected.get("result", {}).items():
            assert result[key] == value, (key, result)
    else:
        error = ERRORS[expected["error"]]
        with pytest.raises(Exception) as info:  # the type is checked below
            _load(name, tmp_path)
        assert isinstance(info.value, error), "".join(traceback.format_exception(info.value))
        message = str(info.value)
        assert expected["match"] in message, message
        assert len(message) < 2000, f"message of {len(message)} characters"
        if issubclass(error, evoaug.EvoAugError):
            assert _raised_inside_evoaug(info.value), traceback.format_tb(info.tb)[-1]
    assert not (tmp_path / SIDE_EFFECT).exists(), "a YAML python tag was constructed"
    assert not (CORPUS / name).parent.joinpath(SIDE_EFFECT).exists()


PYTHON_TAG = "tag:yaml.org,2002:python/"


def _nodes(node: yaml.Node) -> Iterator[yaml.Node]:
    """Every node under ``node``, once each (aliases share nodes: the alias bomb stays small)."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(item for pair in node.value for item in pair)


def _python_tags(path: Path) -> list[yaml.Node]:
    """The nodes of a YAML file tagged as Python objects (composing constructs nothing)."""
    root = yaml.compose(path.read_text())
    return [] if root is None else [n for n in _nodes(root) if n.tag.startswith(PYTHON_TAG)]


def _words(node: yaml.Node) -> set[str]:
    return {w for n in _nodes(node) if isinstance(n, yaml.ScalarNode) for w in n.value.split()}


def test_python_tags_in_the_corpus_would_run_code_and_are_refused() -> None:
    """The tagged files are real attacks: constructed, each would create ``SIDE_EFFECT`` in the
    working directory, where the test above looks. Both loaders get one (policies, recipes), and
    each file must be refused with an error naming the tag, never handled "gracefully"."""
    found = {name: _python_tags(CORPUS / name) for name in FILES if name.endswith(".yaml")}
    tagged = {name: tags for name, tags in found.items() if tags}
    assert {name.split("/")[0] for name in tagged} == {"policies", "recipes"}, tagged
    for name, tags in tagged.items():
        for tag in tags:
            assert tag.tag.endswith((":os.system", ":subprocess.Popen")), (name, tag.tag)
            assert _words(tag) == {"touch", SIDE_EFFECT}, (name, _words(tag))  # relative path
        expected = EXPECTED[name]
        assert "graceful" not in expected and expected.get("exit", 2) == 2, (name, expected)
        assert expected.get("error", "ConfigError") == "ConfigError", (name, expected)
        names = ["constructor for the tag", *(tag.tag.removeprefix(PYTHON_TAG) for tag in tags)]
        assert any(text in expected["match"] for text in names), (name, expected)
