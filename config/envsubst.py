"""``${NAME}`` and ``${NAME:-default}`` references in string values.

References are resolved in values only, never in keys. ``$${`` writes a literal ``${``.
Substitution is pure: the environment is a mapping passed in, and problems are returned, not raised,
so the loader can report them together with validation problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from config.errors import Problem, format_path

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")


def substitute(
    tree: Any, environ: Mapping[str, str], loc: tuple[str | int, ...] = ()
) -> tuple[Any, list[Problem]]:
    """Return a plain copy of ``tree`` (dicts, lists, scalars) with references resolved."""
    problems: list[Problem] = []
    if isinstance(tree, Mapping):
        resolved: dict[Any, Any] = {}
        for key, value in tree.items():
            resolved[key], found = substitute(value, environ, (*loc, str(key)))
            problems.extend(found)
        return resolved, problems
    if isinstance(tree, list):
        items: list[Any] = []
        for index, value in enumerate(tree):
            item, found = substitute(value, environ, (*loc, index))
            items.append(item)
            problems.extend(found)
        return items, problems
    if isinstance(tree, str):
        return _substitute_string(tree, environ, loc)
    return tree, problems


def has_reference(text: str) -> bool:
    """True when ``text`` holds at least one ``${...}`` reference (a literal ``$${`` is not one)."""
    return any(match.group(0) != "$${" for match in _REFERENCE.finditer(text))


def _substitute_string(
    text: str, environ: Mapping[str, str], loc: tuple[str | int, ...]
) -> tuple[str, list[Problem]]:
    problems: list[Problem] = []

    def replace(match: re.Match[str]) -> str:
        whole, name, default = match.group(0), match.group(1), match.group(2)
        if whole == "$${":
            return "${"
        if name is None:
            problems.append(
                Problem(
                    format_path(loc),
                    f"malformed environment reference {whole!r}: use ${{NAME}} or ${{NAME:-default}}",
                )
            )
            return whole
        value = environ.get(name)
        if value is not None:
            return value
        if default is not None:
            return default
        problems.append(
            Problem(
                format_path(loc),
                f"environment variable {name} is not set (write ${{{name}:-}} to make it optional)",
            )
        )
        return ""

    return _REFERENCE.sub(replace, text), problems
