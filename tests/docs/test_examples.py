"""Every ```python block of docs/*.md and README.md runs, so the docs cannot drift from the code.

Each block runs on its own, as a reader would paste it: in a fresh namespace, with a temporary
working directory (files it writes land there), under the suite's warning filters. A block is
skipped only when the line before its fence is ``<!-- skip-example: why -->`` (for snippets that
need a GPU cluster or dataset files); the reason is required and shown in the test report.
Ops and objectives an example registers are unregistered afterwards.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import evoaug
from evoaug import objectives, ops

REPO = Path(__file__).resolve().parents[2]
PAGES = (*sorted((REPO / "docs").glob("*.md")), REPO / "README.md")
SKIP_MARK = re.compile(r"^\s*<!--\s*skip-example:(?P<reason>.*?)-->\s*$")
FENCE_OPEN = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
PYTHON = {"python", "py", "python3"}
MAX_SKIPS = 3  # skips must stay rare: a skipped example can drift


@dataclass(frozen=True)
class Example:
    """One fenced Python block: where it is, its code, and why it is skipped (if it is)."""

    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def _previous_text_line(lines: list[str], index: int) -> str:
    for line in reversed(lines[:index]):
        if line.strip():
            return line
    return ""


def collect(path: Path) -> list[Example]:
    """The Python blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE_OPEN.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence) and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        if opening["info"].lower() in PYTHON:
            body = [
                line[len(indent) :] if line.startswith(indent) else line
                for line in lines[i + 1 : end]
            ]
            mark = SKIP_MARK.match(_previous_text_line(lines, i))
            skip = mark["reason"].strip() if mark else None
            found.append(Example(path, i + 1, "\n".join(body) + "\n", skip))
        i = end + 1
    return found


EXAMPLES = [example for page in PAGES for example in collect(page)]


@pytest.fixture
def registries() -> Iterator[None]:
    """Unregister the ops and objectives an example registers (the registries are global)."""
    before_ops = set(evoaug.available_ops())
    before_objectives = set(objectives.available_objectives())
    yield
    for name in set(evoaug.available_ops()) - before_ops:
        ops.unregister_op(name)
    for name in set(objectives.available_objectives()) - before_objectives:
        objectives.unregister_objective(name)


def test_pages_have_examples() -> None:
    assert len(EXAMPLES) >= 10, [e.id for e in EXAMPLES]
    for page in ("index.md", "quickstart.md", "concepts.md", "contributing.md"):
        assert any(e.path.name == page for e in EXAMPLES), f"docs/{page} has no Python example"


def test_skips_are_few_and_justified() -> None:
    skipped = [e for e in EXAMPLES if e.skip is not None]
    assert len(skipped) <= MAX_SKIPS, [e.id for e in skipped]
    for example in skipped:
        assert len(example.skip or "") >= 10, f"{example.id}: say why the example is skipped"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs(example: Example, tmp_path: Path, monkeypatch, registries) -> None:  # type: ignore[no-untyped-def]
    if example.skip is not None:
        pytest.skip(f"skip-example: {example.skip}")
    monkeypatch.chdir(tmp_path)
    # Pad so that tracebacks point at the right line of the Markdown file.
    source = "\n" * example.line + example.code
    code = compile(source, str(example.path), "exec")
    failure = None
    try:
        exec(code, {"__name__": "__docs_example__"})
    except Exception as err:
        # The example's own frames and below, not the whole page as pytest would print it.
        frames = traceback.extract_tb(err.__traceback__)
        start = next(i for i, f in enumerate(frames) if f.filename == str(example.path))
        shown = "".join(traceback.format_list(frames[start:]))
        message = "".join(traceback.format_exception_only(err)).rstrip()
        failure = f"the example at {example.id} raised:\n{shown}{message}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
