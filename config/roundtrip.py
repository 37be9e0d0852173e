"""gateway.yaml as a round-trip document: edits keep comments, key order, quoting and indentation.

Only the values an edit touches change in the file; ``${ENV}`` references stay references because
edits work on the raw tree, never on the resolved configuration. What is written always reads back
as what was meant: a string ruamel might write in a form that reads back differently (control
characters, line separators, a leading ``?`` inside ``{...}``) is double-quoted with escapes, and
every dump is read back and compared before anyone writes it.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from config.envsubst import has_reference
from config.errors import ConfigError, Problem, format_path

YamlPath = tuple[str | int, ...]
SECRET_KEYS = frozenset({"api_key", "token"})
_KEY_LINE = re.compile(r"^(\s*)(- )?[^\s#-][^:#]*:\s*(#.*)?$")
# Anything but tab and YAML's printable characters less NEL, the line and paragraph separators and
# the byte order mark; or a leading "?", which ruamel writes bare inside {...} and cannot read back.
_NEEDS_ESCAPES = re.compile("^[?]|[^\t\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\U0010ffff]")


def guess_indent(text: str) -> tuple[int, int, int]:
    """``(mapping, sequence, offset)`` as ruamel's ``indent()`` takes them, read off the text."""
    mapping: int | None = None
    offset: int | None = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for parent, child in itertools.pairwise(lines):
        match = _KEY_LINE.match(parent)
        if match is None:
            continue
        parent_indent = len(match.group(1)) + (2 if match.group(2) else 0)
        child_indent = len(child) - len(child.lstrip(" "))
        if child.lstrip(" ").startswith("- ") and child_indent >= parent_indent:
            offset = child_indent - parent_indent if offset is None else offset
        elif child_indent > parent_indent and mapping is None:
            mapping = child_indent - parent_indent
    mapping = mapping or 2
    offset = 2 if offset is None else offset
    return mapping, offset + 2, offset


class RoundTrip:
    def __init__(self, text: str = "") -> None:
        mapping, sequence, offset = guess_indent(text)
        self._yaml = YAML(typ="rt")
        self._yaml.preserve_quotes = True
        self._yaml.width = 4096
        self._yaml.indent(mapping=mapping, sequence=sequence, offset=offset)

    def dump(self, tree: Any) -> str:
        """The text of ``tree``, read back and compared before it is returned.

        A value whose style ruamel does not reproduce faithfully (a float with a long mantissa in
        exponent form loses its last digit, ``1_000.5`` comes back as ``01000.5``) is rewritten in
        the plain style of its type, and the tree dumped again; a ``ConfigError`` names a value
        that still would not read back the same.
        """
        _escape_where_needed(tree)
        while True:
            out = io.StringIO()
            self._yaml.dump(tree, out)
            text = out.getvalue()
            where = _first_difference(tree, load_yaml(text))
            if where is None:
                return text
            if not _restyle(tree, where):
                message = "cannot be written to gateway.yaml so that it reads back the same"
                raise ConfigError([Problem(format_path(where), message)])


def load_yaml(text: str, source: str = "") -> Any:
    """The round-trip tree of ``text``, or a ``ConfigError`` saying where it is not YAML."""
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise ConfigError([Problem("", _yaml_problem(exc))], source) from exc


def _yaml_problem(exc: YAMLError) -> str:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f"not valid YAML: {exc}"


def _escape_where_needed(node: Any) -> None:
    """Double-quote (with escapes) every string value that any other style might not carry intact."""
    if isinstance(node, Mapping):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in list(items):
        if isinstance(value, str):
            if not isinstance(value, DoubleQuotedScalarString) and _NEEDS_ESCAPES.search(value):
                node[key] = DoubleQuotedScalarString(value)
        else:
            _escape_where_needed(value)


def _restyle(tree: Any, path: YamlPath) -> bool:
    """Give the scalar at ``path`` the plainest faithful style of its type; False if it has it."""
    if not path:
        return False
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    value = parent[path[-1]]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    if isinstance(value, str):
        plainest: Any = DoubleQuotedScalarString(value)
    else:
        plainest = float(value) if isinstance(value, float) else int(value)
    if type(value) is type(plainest):
        return False
    parent[path[-1]] = plainest
    return True


def _first_difference(meant: Any, read: Any, path: YamlPath = ()) -> YamlPath | None:
    """The path of the first value that reads back other than meant, or None."""
    if not isinstance(meant, Mapping | list) and not isinstance(read, Mapping | list):
        return None if _kind(meant) is _kind(read) and meant == read else path
    pairs = _children(meant, read)
    if pairs is None:
        return path
    for key, item, again in pairs:
        found = _first_difference(item, again, (*path, key))
        if found is not None:
            return found
    return None


def _children(meant: Any, read: Any) -> list[tuple[str | int, Any, Any]] | None:
    """The corresponding children of two containers of the same shape, or None."""
    if isinstance(meant, Mapping) and isinstance(read, Mapping) and list(meant) == list(read):
        return [(str(key), meant[key], read[key]) for key in meant]
    if isinstance(meant, list) and isinstance(read, list) and len(meant) == len(read):
        return [(index, item, again) for index, (item, again) in enumerate(zip(meant, read, strict=True))]
    return None


def _kind(value: Any) -> type:
    """The plain type a scalar stands for (ruamel reads ``1.5`` as a ``float`` subclass)."""
    return next((kind for kind in (bool, int, float, str) if isinstance(value, kind)), type(value))


def new_mapping(values: Mapping[str, Any]) -> CommentedMap:
    """A block mapping for the file; lists inside it are written inline (``[a, b]``)."""
    mapping = CommentedMap()
    for key, value in values.items():
        if isinstance(value, list | tuple):
            inline = CommentedSeq(value)
            inline.fa.set_flow_style()
            mapping[key] = inline
        else:
            mapping[key] = value
    return mapping


def append(sequence: CommentedSeq, item: CommentedMap) -> None:
    """Append ``item``; a comment that trailed the old last item (it introduces whatever follows the
    list) moves to trail the new one."""
    trailing = _pop_trailing_comment(sequence[-1]) if sequence else None
    sequence.append(item)
    if trailing is not None and len(item):
        item.ca.items[list(item)[-1]] = trailing


def remove(sequence: CommentedSeq, index: int) -> None:
    """Remove ``sequence[index]``, keeping a comment that trailed it when it was the last item."""
    trailing = _pop_trailing_comment(sequence[index]) if index == len(sequence) - 1 else None
    del sequence[index]
    if trailing is not None and sequence and isinstance(sequence[-1], CommentedMap) and len(sequence[-1]):
        sequence[-1].ca.items[list(sequence[-1])[-1]] = trailing


def _pop_trailing_comment(item: Any) -> Any:
    if not isinstance(item, CommentedMap) or not len(item):
        return None
    return item.ca.items.pop(list(item)[-1], None)


def holds_literal_secret(tree: Any) -> bool:
    """True when a secret key holds a value written out, not a ``${ENV}`` reference."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            if key in SECRET_KEYS and isinstance(value, str) and value and not has_reference(value):
                return True
            if holds_literal_secret(value):
                return True
    elif isinstance(tree, list):
        return any(holds_literal_secret(item) for item in tree)
    return False
