import importlib
import pkgutil

import evoaug

PUBLIC = {
    "AugmentedDataset",
    "ConfigError",
    "Constraint",
    "EvoAugCallback",
    "EvoAugError",
    "Evaluator",
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
}


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(evoaug.__all__) == PUBLIC
    assert evoaug.__all__ == sorted(evoaug.__all__)
    for name in evoaug.__all__:
        assert hasattr(evoaug, name)


def test_every_module_declares_all() -> None:
    for info in pkgutil.walk_packages(evoaug.__path__, "evoaug."):
        module = importlib.import_module(info.name)
        assert isinstance(getattr(module, "__all__", None), list), info.name


def test_at_least_twenty_builtin_ops() -> None:
    assert len(evoaug.available_ops()) >= 20


def test_errors_are_builtin_subclasses() -> None:
    assert issubclass(evoaug.ConfigError, ValueError)
    assert issubclass(evoaug.UnknownOpError, KeyError)
    assert issubclass(evoaug.UnknownOpError, evoaug.ConfigError)
    assert issubclass(evoaug.InputError, ValueError)
