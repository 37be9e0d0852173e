"""A plugin's handle on its own section of gateway.yaml, for changes that must survive restarts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap

from config import ConfigError
from gateway.document import ConfigDocument
from gateway.errors import Conflict


class PluginSettings:
    def __init__(self, document: ConfigDocument | None, entry_name: str) -> None:
        self.document = document
        self.entry_name = entry_name
        """The ``name`` of the plugin's entry in ``plugins:`` (a built-in name or an import path)."""

    def __repr__(self) -> str:
        return f"<PluginSettings {self.entry_name} in {self.document.path if self.document else 'no file'}>"

    @property
    def etag(self) -> str:
        return self.document.etag if self.document is not None else '"no-file"'

    @property
    def restart_required(self) -> list[str]:
        """Keys changed in gateway.yaml that take effect only after a restart."""
        return list(self.document.restart_required) if self.document is not None else []

    @property
    def error(self) -> ConfigError | None:
        """Why the last hand edit of gateway.yaml was refused, if it was."""
        return self.document.error if self.document is not None else None

    async def edit(self, change: Callable[[CommentedMap], None], if_match: str | None = None) -> BaseModel:
        """Change the plugin's ``config:`` mapping in the file; returns the plugin's new config.

        Raises ``PreconditionFailed`` (stale ``if_match``), ``ConfigError`` (invalid: nothing
        written) or ``WriteFailed`` (nothing applied).
        """
        if self.document is None:
            raise Conflict(
                "this gateway runs without a config file: changes cannot be saved", code="no_config_file"
            )

        def change_tree(tree: Any) -> None:
            change(self._section(tree))

        config = await self.document.edit(change_tree, if_match)
        return next(entry.config for entry in config.plugins if entry.name == self.entry_name)

    def _section(self, tree: Any) -> CommentedMap:
        entry = next(item for item in tree["plugins"] if item.get("name") == self.entry_name)
        if not isinstance(entry.get("config"), CommentedMap):
            entry["config"] = CommentedMap()
        section: CommentedMap = entry["config"]
        return section
