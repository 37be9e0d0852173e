"""Per-request context: the request id, the route that answered, and the access log line.

``RequestContextMiddleware`` is the outermost layer. It stamps every response with ``X-Request-Id``
(the client's, when it is a sane token, else a new one) and ``X-Gateway-Route`` (who answered:
``cloud``, ``selfhosted/<endpoint-id>``, a plugin's name, or ``gateway`` for the gateway's own
answers), and it notices when the response has been completely sent.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.clock import Clock

_SCOPE_KEY = "gateway.context"
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
# What a logged path may show as it is: printable ASCII but space, quote and backslash. A decoded
# path may hold anything (%0d%0a is a line break), so the rest is escaped: one request, one line.
_UNSAFE_IN_LOG = re.compile(r"[^\x21\x23-\x5b\x5d-\x7e]")

access_log = logging.getLogger("gateway.access")


@dataclass(slots=True, eq=False)
class RequestContext:
    request_id: str
    started: float
    route: str = "gateway"
    status: int = 0
    response_started: bool = False
    response_complete: bool = False
    notes: dict[str, str] = field(default_factory=dict)
    """Extra fields for the access log line, e.g. why a request fell back to the cloud."""


def request_context(scope: Scope) -> RequestContext:
    context: RequestContext = scope[_SCOPE_KEY]
    return context


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, clock: Clock, *, log_access: bool) -> None:
        self.app = app
        self.clock = clock
        self.log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(_request_id(scope), self.clock.monotonic())
        scope[_SCOPE_KEY] = context

        async def send_with_context(message: Message) -> None:
            if message["type"] == "http.response.start":
                context.status = message["status"]
                context.response_started = True
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", context.request_id.encode()),
                    (b"x-gateway-route", context.route.encode()),
                ]
            elif not message.get("more_body", False):
                context.response_complete = True
            await send(message)

        try:
            await self.app(scope, receive, send_with_context)
        finally:
            if self.log_access:
                self._log(scope, context)

    def _log(self, scope: Scope, context: RequestContext) -> None:
        # The path only: a query string may carry credentials, and bodies carry prompts.
        outcome = "complete" if context.response_complete else "aborted"
        extra = "".join(f" {key}={value}" for key, value in context.notes.items())
        access_log.info(
            '%s "%s %s" %d %s route=%s duration_ms=%.1f request_id=%s%s',
            _client(scope),
            scope["method"],
            _loggable(scope["path"]),
            context.status,
            outcome,
            context.route,
            (self.clock.monotonic() - context.started) * 1000,
            context.request_id,
            extra,
        )


def _loggable(path: str) -> str:
    if _UNSAFE_IN_LOG.search(path) is None:
        return path
    return _UNSAFE_IN_LOG.sub(_escaped, path)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _SAFE_ID.fullmatch(value):
            return bytes(value).decode()
    return uuid.uuid4().hex


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"
