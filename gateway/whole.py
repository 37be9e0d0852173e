"""An upstream answer received whole before the client sees a byte, so that it can be checked and,
if it is broken, tried elsewhere; past a size limit, what was read is handed over to streaming.

``receive_whole`` reads the raw body (no decompression) until its end or until it has read more than
``limit`` bytes. A whole answer goes back as a ``WholeResponse`` with an exact ``Content-Length``; a
larger one continues as a ``StreamedResponse`` from where reading stopped. Transport errors while
reading (a reset, a connection closed before ``Content-Length`` bytes, a read timeout) propagate as
httpx's, for the caller to count against the upstream.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from starlette.types import Receive, Scope, Send

from gateway.headers import Header, downstream_headers


@dataclass(slots=True)
class Received:
    """What ``receive_whole`` read: the whole body, or its first chunks and the iterator to go on with."""

    chunks: list[bytes]
    whole: bool
    rest: AsyncIterator[bytes] = field(repr=False)

    @property
    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


async def receive_whole(response: httpx.Response, limit: int) -> Received:
    """Read ``response``'s raw body if it is at most ``limit`` bytes; stop as soon as it is longer."""
    chunks: list[bytes] = []
    rest = response.aiter_raw()
    declared = _declared_length(response)
    if declared is not None and declared > limit:
        return Received(chunks, False, rest)
    size = 0
    while True:
        try:
            chunk = await anext(rest)
        except StopAsyncIteration:
            return Received(chunks, True, rest)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return Received(chunks, False, rest)


def _declared_length(response: httpx.Response) -> int | None:
    with contextlib.suppress(ValueError):
        return int(response.headers.get("content-length", ""))
    return None


class WholeResponse:
    """A received answer as the client gets it: the upstream's status and headers, an exact length."""

    def __init__(self, status: int, headers: list[Header], body: bytes) -> None:
        self.status = status
        self.headers = [(name, value) for name, value in headers if name.lower() != b"content-length"]
        self.headers.append((b"content-length", str(len(body)).encode("latin-1")))
        self.body = body

    @classmethod
    def of(cls, upstream: httpx.Response, received: Received) -> WholeResponse:
        return cls(upstream.status_code, downstream_headers(upstream.headers.raw), received.body)

    def __repr__(self) -> str:
        return f"<WholeResponse [{self.status}, {len(self.body)} bytes]>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
