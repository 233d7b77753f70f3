"""Every recipe in recipes/ parses and instantiates through the `evoaug` LightningCLI.

Recipes that read files are pointed at small generated data in the real on-disk format."""

from pathlib import Path

import pytest

from evoaug import EvoAugCallback
from evoaug._lightning_cli import EvoAugCLI
from evoaug.models import Classifier

RECIPES = sorted((Path(__file__).parents[2] / "recipes").glob("*.yaml"))


def _data_root(name: str, tmp_path: Path, tools) -> str | None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    if name == "cifar100":
        tools.write_cifar100(root)
    elif name.startswith("cifar10"):
        tools.write_cifar10(root)
    elif name == "svhn":
        tools.write_svhn(root)
    elif name == "fashion-mnist":
        tools.write_mnist(root, name="FashionMNIST")
    elif name == "celeba-fairness":
        tools.write_celeba(root)
    elif name == "imagefolder":
        tools.write_image_tree(root)
    elif name == "utkface-fairness":
        tools.write_utkface(root)
    else:
        return None
    return str(root)


def test_all_recipes_are_present() -> None:
    names = {p.stem for p in RECIPES}
    assert names >= {
        "digits", "colored-digits-fairness", "cifar10", "cifar10-resnet18", "cifar100", "svhn",
        "fashion-mnist", "utkface-fairness", "celeba-fairness", "imagefolder",
    }  # fmt: skip
    for path in RECIPES:
        assert "Expected" in path.read_text(), f"{path.name} must state its expected runtime"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_instantiates(recipe: Path, tmp_path: Path, tools, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.argv", ["evoaug"])
    args = [
        "--config", str(recipe),
        "--trainer.accelerator", "cpu",
        "--trainer.precision", "32-true",
        "--trainer.logger", "false",
        "--trainer.default_root_dir", str(tmp_path / "runs"),
        "--data.init_args.num_workers", "0",
    ]  # fmt: skip
    root = _data_root(recipe.stem, tmp_path, tools)
    if root is not None:
        args += ["--data.init_args.root", root]
    cli = EvoAugCLI(subclass_mode_model=True, subclass_mode_data=True, args=args, run=False)
    assert isinstance(cli.model, Classifier)
    assert any(isinstance(cb, EvoAugCallback) for cb in cli.trainer.callbacks)
    cli.datamodule.setup("fit")
    batch = next(iter(cli.datamodule.train_dataloader()))
    images = batch[0]
    assert (
        images.dtype.is_floating_point and 0.0 <= float(images.min()) <= float(images.max()) <= 1.0
    )
