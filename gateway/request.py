"""``ProxyRequest``: what a plugin sees of one client request.

Built once per request from the ASGI scope. Framing is checked here, before any plugin runs: a
request with both ``Content-Length`` and ``Transfer-Encoding`` is refused (request smuggling), and a
declared length over the limit gets its 413 at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from starlette.datastructures import Headers
from starlette.types import Receive, Scope

from gateway.body import RequestBody
from gateway.context import RequestContext
from gateway.errors import BadRequest, BodyTooLarge
from gateway.headers import Header


@dataclass(eq=False)
class ProxyRequest:
    method: str
    raw_path: bytes
    """The path exactly as the client sent it (still percent-encoded); forwarded unchanged."""
    query: bytes
    raw_headers: list[Header]
    client_host: str | None
    scheme: str
    body: RequestBody
    context: RequestContext

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive, context: RequestContext, limit: int) -> ProxyRequest:
        raw_headers: list[Header] = list(scope["headers"])
        client = scope.get("client")
        return cls(
            method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query=scope.get("query_string", b""),
            raw_headers=raw_headers,
            client_host=str(client[0]) if client else None,
            scheme=scope.get("scheme", "http"),
            body=RequestBody(receive, length=_body_length(raw_headers, limit), limit=limit),
            context=context,
        )

    def __repr__(self) -> str:
        return f"<ProxyRequest {self.method} {self.path} id={self.request_id}>"

    @cached_property
    def headers(self) -> Headers:
        return Headers(raw=self.raw_headers)

    @cached_property
    def path(self) -> str:
        """The path without percent-decoding, as text; what plugins match routes against."""
        return self.raw_path.decode("latin-1").split("?", 1)[0]

    @property
    def request_id(self) -> str:
        return self.context.request_id

    @property
    def route(self) -> str:
        return self.context.route

    @route.setter
    def route(self, value: str) -> None:
        """Who answers this request; sent to the client as ``X-Gateway-Route``."""
        self.context.route = value


def _body_length(headers: list[Header], limit: int) -> int | None:
    """The declared body length; None for a chunked body. Refuses ambiguous or oversized framing."""
    lengths = {value.strip() for name, value in headers if name.lower() == b"content-length"}
    chunked = any(name.lower() == b"transfer-encoding" for name, _ in headers)
    if lengths and chunked:
        raise BadRequest("a request must not carry both Content-Length and Transfer-Encoding")
    if chunked:
        return None
    if not lengths:
        return 0
    if len(lengths) > 1 or not next(iter(lengths)).isdigit():
        raise BadRequest(
            "the Content-Length header is not a single non-negative integer", param="Content-Length"
        )
    length = int(next(iter(lengths)))
    if length > limit:
        raise BodyTooLarge(f"request body of {length} bytes is larger than the limit of {limit} bytes")
    return length
