"""Fixtures of the report tests: synthetic run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from evoaug.report._examples import example_run


class RunFactory:
    """``rt.run(**kwargs)`` writes a synthetic run directory under the test's ``tmp_path``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, **kwargs: Any) -> Path:
        return example_run(self.root, **kwargs)


@pytest.fixture
def rt(tmp_path: Path) -> RunFactory:
    return RunFactory(tmp_path / "logs")
