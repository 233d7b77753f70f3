"""No import cycles among evoaug's modules (DESIGN.md: a module imports only from earlier layers).

Every module under ``evoaug/`` is parsed, not imported, and every ``import`` statement counts:
module level, inside functions, and under ``if TYPE_CHECKING:`` (a type-only loop is still a
loop in the design). ``from package import name`` is an edge to ``package.name`` when that is a
module, else to the package itself, whose ``__init__`` re-exports count as its own edges.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "evoaug"

# Import cycles allowed, each as the modules of one strongly connected component: none.
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The evoaug modules that ``module`` imports anywhere in ``source`` (itself excluded).

    Names that are no module of ``modules`` (other packages, or a module that does not exist)
    give no edge.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, node.module] if node.module else parts)
            else:
                base = node.module or ""
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
    return (found & modules) - {module}


def import_graph() -> dict[str, set[str]]:
    """Module name to the evoaug modules it imports, for every module under ``evoaug/``."""
    paths = {_module_name(path): path for path in ROOT.rglob("*.py")}
    modules = set(paths)
    return {
        name: imports(path.read_text(), name, path.name == "__init__.py", modules)
        for name, path in paths.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_no_import_cycles_among_evoaug_modules() -> None:
    unexpected = [
        sorted(component)
        for component in cycles(import_graph())
        if not any(component <= known for known in KNOWN_CYCLES)
    ]
    assert not unexpected, f"import cycles: {unexpected}"


def test_objectives_evaluate_and_search_are_free_of_cycles() -> None:
    layers = ("evoaug.objectives", "evoaug.evaluate", "evoaug.search", "evoaug._probe")
    assert not [m for known in KNOWN_CYCLES for m in known if m.startswith(layers)]
    graph = import_graph()
    assert "evoaug.search._search" not in graph["evoaug.search._state"]
    assert not any(m.startswith("evoaug.evaluate") for m in graph["evoaug.objectives._base"])


def test_imports_count_inside_functions_type_checking_and_relative() -> None:
    modules = {"evoaug.a", "evoaug.a.b", "evoaug.a.c", "evoaug.d", "evoaug.e", "evoaug.f"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "import evoaug.d\n"
        "from . import c\n"
        "from evoaug.a import Name\n"
        "if TYPE_CHECKING:\n"
        "    from evoaug.e import Other\n"
        "def f():\n"
        "    from evoaug.f import thing\n"
        "    from evoaug.missing import other\n"
        "    import numpy\n"
    )
    found = imports(source, "evoaug.a.b", False, modules)
    assert found == {"evoaug.a", "evoaug.a.c", "evoaug.d", "evoaug.e", "evoaug.f"}


def test_cycles_are_the_strongly_connected_components() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(map(sorted, cycles(graph))) == [["a", "b", "c"], ["d", "e"]]


# The layers of docs/contributing.md, earliest first: a module imports only from its own layer
# and earlier ones (a package's __init__ re-exports its own modules).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("evoaug.exceptions", "evoaug._checks", "evoaug._files", "evoaug._run_layout"),
    ("evoaug._version",),
    ("evoaug.ops",),
    ("evoaug.augment",),
    ("evoaug.policy",),
    ("evoaug.genome", "evoaug._demo"),
    ("evoaug.pipeline",),
    ("evoaug._probe", "evoaug.objectives"),
    ("evoaug.evaluate",),
    ("evoaug.search",),
    ("evoaug.callback",),
    ("evoaug.report",),
    ("evoaug.data", "evoaug.models"),
    ("evoaug._lightning_cli",),
    ("evoaug.offline",),
    ("evoaug.cli", "evoaug.lightning", "evoaug"),
)


def layer(module: str) -> int:
    """The index in :data:`LAYERS` of the longest prefix naming ``module``'s layer."""
    best, found = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found >= 0, f"{module} belongs to no layer of LAYERS: add it"
    return found


def test_imports_follow_the_layers_never_backwards() -> None:
    backwards = sorted(
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer(target) > layer(module)
    )
    assert not backwards, "imports from a later layer:\n" + "\n".join(backwards)
