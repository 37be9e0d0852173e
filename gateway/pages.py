"""The admin page at ``/admin``: static files a plugin ships, served by the gateway itself.

Nothing is fetched from elsewhere (no CDN), and the Content-Security-Policy says so: the page may
only load its own files and call the gateway's own API. The files are read once, at start-up.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway.errors import NotFound

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class AdminPage:
    def __init__(self, folder: Path) -> None:
        self.files = {
            path.name: (path.read_bytes(), TYPES[path.suffix])
            for path in folder.iterdir()
            if path.suffix in TYPES
        }
        if "index.html" not in self.files:
            raise ValueError(f"{folder} has no index.html")

    def __repr__(self) -> str:
        return f"<AdminPage {sorted(self.files)}>"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin", self.index, methods=["GET"]),
            Route("/admin/{name}", self.asset, methods=["GET"]),
        ]

    async def index(self, request: Request) -> Response:
        return self._file("index.html")

    async def asset(self, request: Request) -> Response:
        return self._file(request.path_params["name"])

    def _file(self, name: str) -> Response:
        if name not in self.files:
            raise NotFound(f"no such admin page file: {name}")
        content, media_type = self.files[name]
        return Response(content, media_type=media_type, headers=HEADERS)
