"""Requests and responses as the fake's handlers see them, and the OpenAI JSON error shape."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from loadtests.fakes.body import Body

Headers = list[tuple[str, str]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclasses.dataclass(frozen=True)
class RequestHead:
    """A request line and headers; header names lower-case, values decoded as latin-1, order kept."""

    method: str
    path: str
    query: str
    headers: Headers

    @classmethod
    def parse(cls, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> RequestHead:
        path, _, query = target.decode("latin-1").partition("?")
        decoded = [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in headers]
        return cls(method.decode("latin-1").upper(), path, query, decoded)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower-case), if present."""
        return next((value for key, value in self.headers if key == name), None)


@dataclasses.dataclass(frozen=True)
class Response:
    """Status, headers and a lazily produced body; framing headers are added when it is sent."""

    status: int
    headers: Headers
    body: Body

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "")


def json_response(status: int, document: Any, headers: Headers | None = None) -> Response:
    data = json.dumps(document).encode()
    return Response(status, [("Content-Type", "application/json"), *(headers or [])], Body.of(data))


def error_response(
    status: int,
    message: str,
    error_type: str,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: Headers | None = None,
) -> Response:
    """An error in the OpenAI shape ``{"error": {"message", "type", "param", "code"}}``."""
    error = {"message": message, "type": error_type, "param": param, "code": code}
    return json_response(status, {"error": error}, headers)


def invalid_request(message: str, param: str | None = None) -> Response:
    return error_response(400, message, "invalid_request_error", param=param)


def not_found(path: str) -> Response:
    return error_response(404, f"no route for {path}", "not_found_error")


def method_not_allowed(method: str, path: str, allowed: str) -> Response:
    message = f"method {method} not allowed on {path}"
    return error_response(405, message, "invalid_request_error", headers=[("Allow", allowed)])
