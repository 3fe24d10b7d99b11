"""A griffe extension for the API reference: docstrings written for Sphinx, read as Markdown.

The docstrings use reStructuredText's roles (``:class:`~invites.Ledger```), literal blocks
introduced by ``::`` and doctest examples (``>>>``). mkdocstrings renders docstrings as Markdown,
where those would show as written; this turns each role into a code span (the last component of a
``~`` target), a ``::`` into ``:`` before its indented block (Markdown's code block), and a run of
doctest lines into a fenced ``pycon`` block.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj|const):`(~?)([^`]+)`")
LITERAL = re.compile(r"(?m)(\S)::$")
LONE_LITERAL = re.compile(r"(?m)^[ \t]*::[ \t]*\n")


def _role(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def _doctests(text: str) -> str:
    out: list[str] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        if not lines[index].lstrip().startswith(">>>"):
            out.append(lines[index])
            index += 1
            continue
        indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
        out.append(f"{indent}```pycon")
        while index < len(lines) and lines[index].strip():
            out.append(lines[index])
            index += 1
        out.append(f"{indent}```")
    return "\n".join(out)


def markdown(text: str) -> str:
    """The docstring ``text``, its reStructuredText markup turned into Markdown."""
    text = ROLE.sub(_role, text)
    text = LONE_LITERAL.sub("", text)
    text = LITERAL.sub(r"\1:", text)
    return _doctests(text)


class SphinxRoles(griffe.Extension):
    """Rewrites every docstring of the loaded packages as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
