"""The Adapter Spec in code: what a plugin is and what the gateway gives it.

A plugin is a class with a ``name``, a pydantic ``Config`` model and hooks:

* ``__init__(config)`` — build from the validated config; no I/O.
* ``startup(context)`` / ``shutdown()`` — acquire and release what the plugin runs on.
* ``reconfigure(config)`` — apply a changed ``config:`` section without a restart (optional).
* ``handle(request)`` — claim the request by returning a ``Reply`` (the chain stops there), or
  return ``None`` to pass it on to the next plugin and finally to the cloud.
* ``admin_routes()`` — Starlette routes the gateway mounts under ``/api/v1/admin/<name>``,
  behind the admin token, and ``openapi()`` describing them.

docs/adapter-spec.md is the prose version of this module, for people writing plugins.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import httpx
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from pydantic import BaseModel
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from gateway.audit import AuditLog
from gateway.clock import Clock
from gateway.request import ProxyRequest
from gateway.settings import PluginSettings
from gateway.upstream import Target, Upstream

ConfigT = TypeVar("ConfigT", bound=BaseModel)

Reply = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI app that answers one request: any Starlette ``Response``, or a ``StreamedResponse``."""

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,62}")


@dataclass(frozen=True, slots=True)
class PluginContext:
    """What the gateway lends a plugin between ``startup`` and ``shutdown``."""

    upstream: Upstream
    """Sends requests to any ``Target`` over the gateway's shared HTTP client."""
    cloud: Target
    """The cloud upstream, as the gateway forwards to it."""
    http: httpx.AsyncClient
    """The shared HTTP client, for the plugin's own calls (health probes, ...)."""
    clock: Clock
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    settings: PluginSettings
    """The plugin's own section of gateway.yaml: edits that are validated, saved, then applied."""
    audit: AuditLog
    """Where admin changes are recorded (secrets masked by the caller)."""


class RestartRequired(Exception):
    """Raised by ``reconfigure`` when a change can only take effect after a restart."""


class Plugin(Generic[ConfigT]):
    name: ClassVar[str]
    """Unique, lower-case, URL-safe; also the admin mount ``/api/v1/admin/<name>``."""
    Config: ClassVar[type[BaseModel]]
    """Validates the plugin's ``config:`` section; must forbid unknown keys."""

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    async def startup(self, context: PluginContext) -> None:
        """Called once before the first request; raise to refuse to start the gateway."""

    async def shutdown(self) -> None:
        """Called once after the last request; release everything ``startup`` acquired."""

    async def reconfigure(self, config: ConfigT) -> None:
        """Apply a changed ``config:`` section (a hand edit of gateway.yaml or an admin change)
        while requests run; the default asks for a restart."""
        raise RestartRequired(f"plugin {self.name!r} applies a changed configuration only after a restart")

    async def handle(self, request: ProxyRequest) -> Reply | None:
        """Answer ``request`` (return a reply) or pass it on (return None)."""
        return None

    def admin_routes(self) -> Sequence[BaseRoute]:
        """Routes mounted under ``/api/v1/admin/<name>``, behind the admin token."""
        return ()

    def admin_page(self) -> Path | None:
        """A folder with ``index.html`` (and its files) served at ``/admin`` without authentication:
        the page itself asks for the admin token before it calls the admin API."""
        return None

    def openapi(self) -> dict[str, Any]:
        """``{"paths": {...}, "schemas": {...}}`` describing ``admin_routes`` (paths relative to the
        mount), published in ``/api/v1/admin/openapi.json``."""
        return {}
