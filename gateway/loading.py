"""Finding plugin classes by the ``name`` of their gateway.yaml entry, and refusing bad ones.

A ``name`` is looked up, in order, as:

1. ``package.module:Class`` — an import path (custom and community adapters);
2. a built-in module ``plugins/<name>`` that exports ``PLUGIN``;
3. an installed distribution's entry point in the ``influgen_gateway.plugins`` group.

A class is refused unless it subclasses ``Plugin``, declares a URL-safe ``name`` and a pydantic
``Config`` model that forbids unknown keys. Failures are ``LookupError``s the config loader reports
at the entry's YAML path.
"""

from __future__ import annotations

import importlib
import importlib.metadata

from pydantic import BaseModel

from config import ConfigError, GatewayConfig, Problem
from gateway.plugin import NAME_PATTERN, Plugin

ENTRY_POINT_GROUP = "influgen_gateway.plugins"
SPEC = "see docs/adapter-spec.md"

AnyPlugin = Plugin[BaseModel]


def plugin_class(name: str) -> type[AnyPlugin]:
    """The plugin class an entry's ``name`` refers to; ``LookupError`` says why there is none."""
    if ":" in name:
        found = _import_path(name)
    else:
        found = _builtin(name) or _entry_point(name)
        if found is None:
            raise LookupError(
                f"no plugin named {name!r}: not a built-in (plugins/), not an installed entry point, "
                f"and not an import path like package.module:Class ({SPEC})"
            )
    return _checked(found, name)


def config_model(name: str) -> type[BaseModel]:
    """The ``resolve_plugin`` callback of ``config.load_config``."""
    return plugin_class(name).Config


def build_plugins(config: GatewayConfig) -> list[AnyPlugin]:
    """Instantiate every enabled plugin, in the order of the file; names must be unique."""
    plugins: list[AnyPlugin] = []
    problems: list[Problem] = []
    for index, entry in enumerate(config.plugins):
        if not entry.enabled:
            continue
        cls = plugin_class(entry.name)
        if any(plugin.name == cls.name for plugin in plugins):
            problems.append(
                Problem(f"plugins[{index}].name", f"a plugin named {cls.name!r} is already loaded")
            )
            continue
        plugins.append(cls(entry.config))
    if problems:
        raise ConfigError(problems)
    return plugins


def _import_path(path: str) -> object:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise LookupError(f"cannot import {module_name!r}: {exc} ({SPEC})") from exc
    try:
        found: object = getattr(module, attribute)
    except AttributeError:
        raise LookupError(f"module {module_name!r} has no attribute {attribute!r} ({SPEC})") from None
    return found


def _builtin(name: str) -> object | None:
    if not NAME_PATTERN.fullmatch(name):
        return None
    module_name = f"plugins.{name.replace('-', '_')}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return None
        raise LookupError(f"built-in plugin {name!r} failed to import: {exc}") from exc
    found: object = getattr(module, "PLUGIN", None)
    if found is None:
        raise LookupError(f"built-in module {module_name} does not export PLUGIN ({SPEC})")
    return found


def _entry_point(name: str) -> object | None:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            loaded: object = entry_point.load()
        except Exception as exc:
            raise LookupError(f"entry point {name!r} ({entry_point.value}) failed to load: {exc}") from exc
        return loaded
    return None


def _checked(found: object, name: str) -> type[AnyPlugin]:
    if not (isinstance(found, type) and issubclass(found, Plugin)):
        raise LookupError(f"{name!r} is not a Plugin subclass ({SPEC})")
    declared = getattr(found, "name", None)
    if not isinstance(declared, str) or not NAME_PATTERN.fullmatch(declared):
        raise LookupError(f"{name!r} must declare name = '<lower-case, URL-safe>' ({SPEC})")
    model = getattr(found, "Config", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise LookupError(f"{name!r} must declare Config, a pydantic model of its settings ({SPEC})")
    if model.model_config.get("extra") != "forbid":
        raise LookupError(f"{name!r}: its Config must set extra='forbid' so typos are errors ({SPEC})")
    plugin: type[AnyPlugin] = found
    return plugin
