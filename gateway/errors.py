"""Errors the gateway answers with, each mapped to one HTTP status and one JSON body.

    GatewayError                      500 server_error
      ├─ BadRequest                   400 invalid_request_error
      ├─ Unauthorized                 401 authentication_error
      ├─ Forbidden                    403 permission_error
      ├─ NotFound                     404 not_found_error
      ├─ MethodNotAllowed             405 invalid_request_error
      ├─ Conflict                     409 conflict_error
      ├─ PreconditionFailed           412 precondition_failed
      ├─ BodyTooLarge                 413 invalid_request_error
      ├─ UrlTooLong                   414 invalid_request_error
      ├─ Unprocessable                422 invalid_request_error
      ├─ HeadersTooLarge              431 invalid_request_error
      ├─ UpstreamUnreachable          502 upstream_error
      ├─ ServiceUnavailable           503 service_unavailable
      │    └─ PoolExhausted           503 every pooled upstream connection is busy (the gateway's fault)
      └─ UpstreamTimeout              504 upstream_timeout

    ClientDisconnected                not an answer: the client is gone, nothing can be sent

The body is the one OpenAI-style SDKs parse: ``{"error": {"message", "type", "param", "code"}}``.
Messages never carry a secret, a prompt or a request body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import ClassVar

from starlette.responses import Response


class GatewayError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        content = json.dumps(self.body(), separators=(",", ":")).encode()
        return Response(content, self.status, headers=self.headers, media_type="application/json")


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"


class Forbidden(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"


class Conflict(GatewayError):
    status = 409
    type = "conflict_error"


class PreconditionFailed(GatewayError):
    status = 412
    type = "precondition_failed"


class BodyTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"


class UrlTooLong(GatewayError):
    status = 414
    type = "invalid_request_error"


class Unprocessable(GatewayError):
    status = 422
    type = "invalid_request_error"


class HeadersTooLarge(GatewayError):
    status = 431
    type = "invalid_request_error"


class UpstreamUnreachable(GatewayError):
    status = 502
    type = "upstream_error"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"


class PoolExhausted(ServiceUnavailable):
    """No free connection in the gateway's own pool: not the upstream's fault."""


class UpstreamTimeout(GatewayError):
    status = 504
    type = "upstream_timeout"


def error_for_status(status: int, message: str, headers: Mapping[str, str] | None = None) -> GatewayError:
    """The gateway error that answers with ``status`` (a plain ``GatewayError`` for unknown ones)."""
    for cls in _ERRORS:
        if cls.status == status:
            return cls(message, headers=headers)
    return GatewayError(message, headers=headers)


_ERRORS: tuple[type[GatewayError], ...] = (
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PreconditionFailed,
    BodyTooLarge,
    UrlTooLong,
    Unprocessable,
    HeadersTooLarge,
    UpstreamUnreachable,
    ServiceUnavailable,
    UpstreamTimeout,
)


class ClientDisconnected(Exception):
    """The client closed its connection; there is nobody left to answer."""
