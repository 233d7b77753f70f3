"""Outside the ops package, evoaug reaches the ops through ``evoaug.ops`` only."""

from __future__ import annotations

import ast
from pathlib import Path

import evoaug
import evoaug.ops


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_no_module_outside_ops_imports_its_private_modules() -> None:
    root = Path(evoaug.__file__).parent
    ops = Path(evoaug.ops.__file__).parent
    offenders = [
        f"{path.relative_to(root)}: {name}"
        for path in sorted(root.rglob("*.py"))
        if ops not in path.parents
        for name in _imported_modules(path)
        if name.startswith("evoaug.ops._")
    ]
    assert not offenders


def test_what_the_engine_needs_is_public() -> None:
    for name in ("warp_affine", "warp_nearest", "registry_version", "fresh_generator", "uniform"):
        assert name in evoaug.ops.__all__
        assert callable(getattr(evoaug.ops, name))
