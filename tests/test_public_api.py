import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import evoaug

README = Path(__file__).resolve().parents[1] / "README.md"

# The top-level public API, sorted. A name added to (or removed from) `evoaug.__all__` is added
# here (or removed) in the same change.
PUBLIC = [
    "AugmentedDataset",
    "ConfigError",
    "Constraint",
    "Evaluator",
    "EvoAugCallback",
    "EvoAugError",
    "Gene",
    "GenomeSpace",
    "InputError",
    "Knee",
    "Objective",
    "OfflineSearch",
    "OpError",
    "OpSpec",
    "OptimizerSpec",
    "Policy",
    "PolicySlot",
    "Probe",
    "Search",
    "Selection",
    "SubPolicy",
    "UnknownOpError",
    "Weights",
    "__version__",
    "available_ops",
    "data",
    "evaluate",
    "get_op",
    "models",
    "objectives",
    "offline",
    "ops",
    "register_objective",
    "register_op",
    "search",
]

# The built-in op table (evoaug/ops/_table.py), sorted; the README promises this many.
BUILTIN_OPS = [
    "AutoContrast",
    "Brightness",
    "Color",
    "Contrast",
    "Cutout",
    "Equalize",
    "GaussianBlur",
    "GaussianNoise",
    "Grayscale",
    "HorizontalFlip",
    "Hue",
    "Identity",
    "Invert",
    "Perspective",
    "Posterize",
    "Rotate",
    "Sharpness",
    "ShearX",
    "ShearY",
    "Solarize",
    "TranslateX",
    "TranslateY",
    "VerticalFlip",
    "Zoom",
]


def test_exported_names_are_exactly_the_public_api() -> None:
    assert evoaug.__all__ == sorted(evoaug.__all__)
    assert evoaug.__all__ == PUBLIC
    missing = [name for name in PUBLIC if not hasattr(evoaug, name)]
    assert not missing, f"evoaug.__all__ names what evoaug does not define: {missing}"


def test_every_module_declares_all_and_each_name_exists() -> None:
    for info in pkgutil.walk_packages(evoaug.__path__, "evoaug."):
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", None)
        assert isinstance(names, list), f"{info.name} has no __all__ list"
        assert len(set(names)) == len(names), f"{info.name}.__all__ repeats a name"
        missing = [name for name in names if not hasattr(module, name)]
        assert not missing, f"{info.name}.__all__ names what it does not define: {missing}"


def test_exactly_the_builtin_ops_the_readme_promises() -> None:
    promised = re.search(r"# (\d+) built-in ops", README.read_text())
    assert promised is not None, "the README no longer says how many built-in ops there are"
    assert int(promised[1]) == len(BUILTIN_OPS) == 24
    assert sorted(evoaug.ops.BUILTIN_OPS) == BUILTIN_OPS
    assert len(set(evoaug.ops.BUILTIN_OPS)) == len(evoaug.ops.BUILTIN_OPS)
    # available_ops() also lists custom ops that other tests may have registered.
    assert set(BUILTIN_OPS) <= set(evoaug.available_ops())
    assert all(evoaug.get_op(name).name == name for name in BUILTIN_OPS)


def test_errors_are_builtin_subclasses() -> None:
    assert issubclass(evoaug.ConfigError, ValueError)
    assert issubclass(evoaug.UnknownOpError, KeyError)
    assert issubclass(evoaug.UnknownOpError, evoaug.ConfigError)
    assert issubclass(evoaug.InputError, ValueError)


def test_importing_evoaug_imports_no_optional_extra() -> None:
    """Ray and Dask are imported when their runner is built, never by ``import evoaug``; kornia
    (the ``bench`` extra) only by ``bench/throughput.py``."""
    code = (
        "import pkgutil, importlib, sys, evoaug\n"
        "for info in pkgutil.walk_packages(evoaug.__path__, 'evoaug.'):\n"
        "    importlib.import_module(info.name)\n"
        "extras = {'ray', 'dask', 'distributed', 'kornia'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & extras))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]"
