"""The admin surface's front door: every route under ``/api/v1/admin`` passes ``AdminGuard`` first.

The token is compared in constant time over bytes, so a non-ASCII or oversized header is just a
wrong token (401), never an error. With no ``admin.token`` configured the admin API is closed (403)
and says how to open it.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import Forbidden, Unauthorized

_MAX_HEADER = 4096


class AdminGuard:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._expected = token.encode() if token else None

    def __repr__(self) -> str:
        return f"<AdminGuard [{'token set' if self._expected else 'closed'}]>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._expected is None:
            closed = Forbidden(
                "the admin API is disabled: set admin.token in gateway.yaml "
                "(for example token: ${GATEWAY_ADMIN_TOKEN}) and restart the gateway",
                code="admin_disabled",
            )
            await closed.response()(scope, receive, send)
            return
        if not _authorized(scope, self._expected):
            error = Unauthorized(
                "missing or wrong admin token: send Authorization: Bearer <admin.token>",
                code="invalid_admin_token",
                headers={"WWW-Authenticate": 'Bearer realm="influgen-gateway admin"'},
            )
            await error.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _authorized(scope: Scope, expected: bytes) -> bool:
    values = [value for name, value in scope["headers"] if name == b"authorization"]
    if len(values) != 1 or len(values[0]) > _MAX_HEADER:
        return False
    scheme, _, token = values[0].strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), expected)
