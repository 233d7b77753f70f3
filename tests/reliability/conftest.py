"""The tiny digits fit of tests/reliability/scripts/fit_digits.py, importable in-process."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).parent / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"reliability_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def digits_fit() -> ModuleType:
    """``digits_fit.fit(root, ...)`` and ``digits_fit.callback(**overrides)``."""
    return load_script("fit_digits")
