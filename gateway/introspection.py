"""``GET /api/v1/admin/runtime``: what the gateway process holds right now.

The counts a leak would show first — event-loop tasks, upstream connections, resident memory — so
an operator (or a soak run) can compare them with a baseline after load has drained.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.state import runtime_of

_STATM = Path("/proc/self/statm")

RUNTIME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["uptime_seconds", "tasks", "upstream_connections", "rss_bytes"],
    "properties": {
        "uptime_seconds": {"type": "number"},
        "tasks": {"type": "integer", "description": "asyncio tasks alive in the event loop"},
        "upstream_connections": {
            "type": "object",
            "required": ["open", "idle", "max"],
            "properties": {
                "open": {"type": "integer", "description": "connections to any upstream, idle included"},
                "idle": {"type": "integer", "description": "kept alive in the pool for reuse"},
                "max": {"type": "integer"},
            },
        },
        "rss_bytes": {"type": ["integer", "null"], "description": "resident memory; null off Linux"},
    },
}

RUNTIME_PATH: dict[str, Any] = {
    "get": {
        "summary": "What the gateway process holds: tasks, upstream connections, memory",
        "operationId": "runtime",
        "responses": {
            "200": {
                "description": "Current figures",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Runtime"}}},
            },
            **{
                status: {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
                for status in ("401", "403")
            },
        },
    }
}


async def runtime_view(request: Request) -> Response:
    runtime = runtime_of(request.scope)
    pool = runtime.pool
    return JSONResponse(
        {
            "uptime_seconds": round(runtime.clock.monotonic() - runtime.started_at, 3),
            "tasks": len(asyncio.all_tasks()),
            "upstream_connections": {
                "open": pool.open_connections,
                "idle": pool.idle_connections,
                "max": pool.max_connections,
            },
            "rss_bytes": rss_bytes(),
        }
    )


def rss_bytes() -> int | None:
    """Resident set size of this process, from ``/proc`` (Linux); None where that is absent."""
    try:
        resident_pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
