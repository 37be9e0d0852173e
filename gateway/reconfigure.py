"""Applying a changed gateway.yaml to a running gateway.

Plugin sections are applied at once through each plugin's ``reconfigure`` hook, with no request
dropped. What cannot change under running requests — the server address, the cloud upstream,
limits, telemetry, the admin token, which plugins are loaded — is reported as needing a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from config import GatewayConfig
from gateway.loading import AnyPlugin
from gateway.plugin import RestartRequired

logger = logging.getLogger("gateway.config")

RESTART_KEYS = ("server", "cloud", "admin", "limits", "telemetry")


class Reconfigurer:
    def __init__(self, plugins: Sequence[AnyPlugin], restart_required: list[str]) -> None:
        self.plugins = tuple(plugins)
        self.restart_required = restart_required
        """Keys changed in the file that take effect only after a restart (shared with the document)."""

    def __repr__(self) -> str:
        return f"<Reconfigurer restart_required={self.restart_required}>"

    async def __call__(self, old: GatewayConfig, new: GatewayConfig) -> None:
        pending = [key for key in RESTART_KEYS if getattr(old, key) != getattr(new, key)]
        old_entries = [(entry.name, entry.enabled) for entry in old.plugins]
        new_entries = [(entry.name, entry.enabled) for entry in new.plugins]
        if old_entries != new_entries:
            pending.append("plugins")
        else:
            pending.extend(await self._apply_plugins(old, new))
        for key in pending:
            if key not in self.restart_required:
                logger.warning("%s changed in gateway.yaml: it takes effect after a restart", key)
                self.restart_required.append(key)

    async def _apply_plugins(self, old: GatewayConfig, new: GatewayConfig) -> list[str]:
        enabled = [entry for entry in new.plugins if entry.enabled]
        pending = []
        for index, (plugin, entry) in enumerate(zip(self.plugins, enabled, strict=True)):
            before = next(item for item in old.plugins if item.name == entry.name)
            if before.config == entry.config:
                continue
            try:
                await plugin.reconfigure(entry.config)
            except RestartRequired as why:
                logger.warning("%s", why)
                pending.append(f"plugins[{index}]")
            except Exception:
                logger.exception("plugin %s failed to apply its new configuration", plugin.name)
                pending.append(f"plugins[{index}]")
        return pending
