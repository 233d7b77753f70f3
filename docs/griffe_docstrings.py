"""A griffe extension (mkdocstrings) that renders evoaug's docstrings as their authors meant.

evoaug's docstrings are Google style with two habits griffe reads differently:

- ``Example:`` (singular) heads the doctest section; griffe's Google parser knows only
  ``Examples:`` and would render the section as an admonition of Markdown text, where ``>>>``
  lines become nested quotes and ``x[0]`` looks like a link. The extension renames the heading.
- Sphinx roles (``:class:`~evoaug.Policy```, ``:meth:`tell```) would show the role's name; the
  extension keeps the target as inline code (the last component for ``~`` targets).

Only the text handed to the parser changes; the source is untouched.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["EvoAugDocstrings"]

_EXAMPLE = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|meth|func|data|attr|mod|exc|obj):`(?P<tilde>~?)(?P<target>[^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match["target"]
    if match["tilde"]:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def rewrite(text: str) -> str:
    """``text`` with ``Example:`` headings renamed and Sphinx roles turned into code."""
    text = _EXAMPLE.sub(lambda m: f"{m['indent']}Examples:", text)
    return _ROLE.sub(_role, text)


class EvoAugDocstrings(griffe.Extension):
    """Rewrite every docstring once it is loaded, before mkdocstrings parses it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring (modules, classes, functions, attributes)."""
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
