"""The gateway as one ASGI application.

    RequestContextMiddleware     X-Request-Id, X-Gateway-Route, access log
      TracingMiddleware          server span (only when telemetry is on)
        /api/v1/..., /admin      the gateway's own routes: health; admin API behind AdminGuard; the page
        everything else          Dispatcher: the plugin chain, then the cloud

The gateway's own routes answer errors with the same JSON body as the proxy path: a handler may
raise any ``GatewayError`` (or Starlette's ``HTTPException``) and the client gets
``{"error": {...}}`` with the right status.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from config import GatewayConfig
from gateway import __version__
from gateway.admin import AdminGuard
from gateway.clock import Clock, SystemClock
from gateway.context import RequestContextMiddleware
from gateway.dispatch import Dispatcher
from gateway.document import ConfigDocument
from gateway.errors import GatewayError, error_for_status
from gateway.introspection import runtime_view
from gateway.lifespan import open_runtime
from gateway.loading import AnyPlugin
from gateway.openapi import admin_document
from gateway.pages import AdminPage
from gateway.telemetry import TracingMiddleware

OWN_PREFIX = "/api/v1/"
PAGE = "/admin"
ADMIN_PREFIX = "/api/v1/admin"


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        plugins: Sequence[AnyPlugin],
        clock: Clock | None = None,
        document: ConfigDocument | None = None,
    ) -> None:
        self.config = config
        self.document = document
        self.plugins = tuple(plugins)
        self.clock = clock or SystemClock()
        self.dispatcher = Dispatcher(self.plugins, max_body_bytes=config.limits.max_body_bytes)
        self.router = Router(
            routes=_own_routes(config, self.plugins),
            redirect_slashes=False,
            lifespan=lambda _app: open_runtime(self.config, self.plugins, self.clock, self.document),
        )
        self.own_routes = json_errors(self.router)
        self._mount_roots = {f"{ADMIN_PREFIX}/{p.name}" for p in self.plugins if p.admin_routes()}
        self.app = RequestContextMiddleware(
            TracingMiddleware(self._route), self.clock, log_access=config.telemetry.access_log
        )

    def __repr__(self) -> str:
        names = [plugin.name for plugin in self.plugins]
        return f"<Gateway cloud={self.config.cloud.base_url} plugins={names}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.router.lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _is_own(scope["path"]):
            await self.dispatcher(scope, receive, send)
        else:
            # Starlette's routing raises HTTPException (404, 405) only when it sees an "app".
            scope["app"] = self
            if scope.get("path") in self._mount_roots:
                # /api/v1/admin/<plugin> is the root of that plugin's mount, like /api/v1/admin/<plugin>/
                scope["path"] += "/"
            await self.own_routes(scope, receive, send)


def _is_own(path: str) -> bool:
    return path.startswith((OWN_PREFIX, PAGE + "/")) or path == PAGE


def json_errors(app: ASGIApp) -> ASGIApp:
    """Render ``GatewayError`` and ``HTTPException`` raised by ``app`` as the JSON error body."""
    return ExceptionMiddleware(app, handlers={GatewayError: _gateway_error, HTTPException: _http_error})


def _own_routes(config: GatewayConfig, plugins: Sequence[AnyPlugin]) -> list[BaseRoute]:
    token = config.admin.token.get_secret_value() if config.admin.token else None
    mounts: list[BaseRoute] = [
        Mount(f"/{plugin.name}", routes=list(routes))
        for plugin in plugins
        if (routes := plugin.admin_routes())
    ]
    document = admin_document(plugins, __version__)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    admin_routes = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/runtime", runtime_view, methods=["GET"]),
        *mounts,
    ]
    pages = [AdminPage(folder) for plugin in plugins if (folder := plugin.admin_page()) is not None]
    return [
        Route("/api/v1/health", _health, methods=["GET"]),
        Mount(ADMIN_PREFIX, app=AdminGuard(Router(admin_routes, redirect_slashes=False), token)),
        *(pages[0].routes() if pages else []),
    ]


async def _health(request: Request) -> Response:
    """Liveness of the gateway process itself; no upstream is contacted."""
    return JSONResponse({"status": "ok"})


async def _gateway_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, GatewayError):  # pragma: no cover - registered for GatewayError only
        raise exc
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException only
        raise exc
    message = (
        exc.detail
        if exc.status_code != 404
        else f"no such gateway route: {request.method} {request.url.path}"
    )
    return error_for_status(exc.status_code, message, exc.headers).response()
