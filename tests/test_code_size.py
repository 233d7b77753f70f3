"""Modules and functions stay small enough to read in one sitting (``docs/contributing.md``).

A module holds one concept: about 450 lines, at most :data:`MODULE_LINES`. A function does one
thing: at most :data:`FUNCTION_LINES` lines of code, its docstring not counted (a documented
argument list costs nothing here). Both are counted from the source, not from coverage.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "evoaug"

MODULE_LINES = 480
FUNCTION_LINES = 80

# The one module above the limit, and why. Its class documents every one of the callback's
# forty settings (Lightning's style: the signature is the configuration) and owns the state
# its checkpoints carry; the work is in the modules beside it.
LARGER_MODULES = {"callback/_callback.py": 700}


def module_lines() -> dict[str, int]:
    """Lines per module under ``evoaug/``, by path relative to it."""
    return {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for path in sorted(ROOT.rglob("*.py"))
    }


def function_lines(source: str) -> dict[str, int]:
    """Lines of code per function or method of ``source`` (its docstring not counted)."""
    sizes: dict[str, int] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if ast.get_docstring(node, clean=False) is not None:
            first = node.body[0]
            lines -= (first.end_lineno or first.lineno) - first.lineno + 1
        sizes[f"{node.name}:{node.lineno}"] = lines
    return sizes


def test_modules_stay_under_the_line_limit() -> None:
    sizes = module_lines()
    assert len(sizes) > 100  # the tree was found
    over = {name: n for name, n in sizes.items() if n > LARGER_MODULES.get(name, MODULE_LINES)}
    assert not over, f"modules over {MODULE_LINES} lines (split by concept): {over}"


def test_the_exceptions_are_still_needed() -> None:
    sizes = module_lines()
    for name, limit in LARGER_MODULES.items():
        assert name in sizes, f"{name} no longer exists: drop its exception"
        assert sizes[name] > MODULE_LINES, f"{name} fits the limit now: drop its exception"
        assert sizes[name] <= limit


def test_functions_stay_under_the_line_limit() -> None:
    over = {
        f"{name}:{function}": n
        for name, path in ((p.relative_to(ROOT).as_posix(), p) for p in ROOT.rglob("*.py"))
        for function, n in function_lines(path.read_text()).items()
        if n > FUNCTION_LINES
    }
    assert not over, f"functions over {FUNCTION_LINES} lines of code: {over}"


def test_function_lines_leave_the_docstring_out() -> None:
    source = '''
def documented(a):
    """One line.

    More.
    """
    return a


def plain(a):
    b = a
    return b


class Holder:
    async def method(self):
        "one"
        return 1
'''
    assert function_lines(source) == {"documented:2": 2, "plain:10": 3, "method:16": 2}
