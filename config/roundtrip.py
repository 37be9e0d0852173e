"""gateway.yaml as a round-trip document: edits keep comments, key order, quoting and indentation.

Only the values an edit touches change in the file; ``${ENV}`` references stay references because
edits work on the raw tree, never on the resolved configuration.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from config.envsubst import has_reference

SECRET_KEYS = frozenset({"api_key", "token"})
_KEY_LINE = re.compile(r"^(\s*)(- )?[^\s#-][^:#]*:\s*(#.*)?$")


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

    def load(self, text: str) -> Any:
        return self._yaml.load(text)

    def dump(self, tree: Any) -> str:
        out = io.StringIO()
        self._yaml.dump(tree, out)
        return out.getvalue()


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
