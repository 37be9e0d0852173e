"""gateway.yaml -> ``GatewayConfig``, or a ``ConfigError`` naming every bad key.

The loader never learns what a plugin is: the caller passes ``resolve_plugin``, which maps a plugin
entry's ``name`` to the pydantic model that validates its ``config`` section.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from config.envsubst import substitute
from config.errors import ConfigError, Problem, format_path
from config.messages import problems_from
from config.models import GatewayConfig, Model, PluginEntry
from config.roundtrip import load_yaml
from config.values import NonEmptyStr

PluginResolver = Callable[[str], type[BaseModel]]
"""Maps a plugin entry's ``name`` to its config model; raises ``LookupError`` with a reason."""


class _RawPluginEntry(Model):
    name: NonEmptyStr
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)


def load_config(
    path: Path, resolve_plugin: PluginResolver, environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Read, resolve ``${ENV}`` references in, and validate the YAML file at ``path``."""
    tree = read_yaml(path)
    return parse_config(tree, resolve_plugin, os.environ if environ is None else environ, source=str(path))


def read_yaml(path: Path) -> Any:
    """The round-trip YAML tree of ``path`` (comments kept), or a ``ConfigError`` saying why not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("", f"cannot read the file: {exc}")], str(path)) from exc
    return load_yaml(text, source=str(path))


def parse_config(
    tree: Any, resolve_plugin: PluginResolver, environ: Mapping[str, str], source: str = ""
) -> GatewayConfig:
    """Validate an already-parsed YAML tree (used for files and for edits before they are saved)."""
    if not isinstance(tree, Mapping):
        raise ConfigError(
            [Problem("", "the file must be a mapping of keys to values (cloud: is required)")], source
        )
    resolved, problems = substitute(tree, environ)
    entries = _plugin_entries(resolved.pop("plugins", None) or [], resolve_plugin, problems)
    try:
        config = GatewayConfig.model_validate({**resolved, "plugins": entries})
    except ValidationError as exc:
        problems.extend(problems_from(exc, model=GatewayConfig))
    if problems:
        raise ConfigError(_in_file_order(problems, list(tree)), source)
    return config


def _in_file_order(problems: list[Problem], keys: list[Any]) -> list[Problem]:
    order = {str(key): index for index, key in enumerate(keys)}
    return sorted(problems, key=lambda problem: order.get(_top_key(problem.path), len(order)))


def _top_key(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def _plugin_entries(raw: Any, resolve_plugin: PluginResolver, problems: list[Problem]) -> list[PluginEntry]:
    if not isinstance(raw, list):
        problems.append(Problem("plugins", "must be a list of {name, enabled, config} entries"))
        return []
    entries: list[PluginEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        entry = _plugin_entry(index, item, resolve_plugin, problems)
        if entry is None:
            continue
        if entry.name in seen:
            problems.append(
                Problem(
                    format_path(("plugins", index, "name")),
                    f"{entry.name!r} is already configured at plugins[{seen[entry.name]}]",
                )
            )
            continue
        seen[entry.name] = index
        entries.append(entry)
    return entries


def _plugin_entry(
    index: int, item: Any, resolve_plugin: PluginResolver, problems: list[Problem]
) -> PluginEntry | None:
    where: tuple[str | int, ...] = ("plugins", index)
    try:
        raw = _RawPluginEntry.model_validate(item)
    except ValidationError as exc:
        problems.extend(problems_from(exc, where, model=_RawPluginEntry))
        return None
    try:
        model = resolve_plugin(raw.name)
    except LookupError as exc:
        problems.append(
            Problem(format_path((*where, "name")), str(exc.args[0]) if exc.args else "unknown plugin")
        )
        return None
    try:
        config = model.model_validate(raw.config)
    except ValidationError as exc:
        problems.extend(problems_from(exc, (*where, "config"), model=model))
        return None
    return PluginEntry(name=raw.name, enabled=raw.enabled, config=config)
