"""The audit log: one JSON line per change an admin made, secrets masked before they get here."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio

from gateway.clock import Clock

logger = logging.getLogger("gateway.audit")


class AuditLog:
    def __init__(self, path: Path | None, clock: Clock) -> None:
        self.path = path
        self.clock = clock

    def __repr__(self) -> str:
        return f"<AuditLog {self.path or 'off'}>"

    async def record(self, action: str, target: str, changes: dict[str, Any], **context: Any) -> None:
        """Append ``{"time", "action", "target", "changes", ...context}``; never raises."""
        if self.path is None:
            return
        entry = {"time": self.clock.wall(), "action": action, "target": target, "changes": changes, **context}
        line = json.dumps(entry, separators=(",", ":"), sort_keys=True, default=str) + "\n"
        try:
            await anyio.to_thread.run_sync(_append, self.path, line)
        except OSError as exc:
            logger.error("could not write the audit log %s: %s", self.path, exc)


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
