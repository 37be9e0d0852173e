"""The body of one client request: bounded by the size limit, read at most once from the client.

A body with a ``Content-Length`` streams upstream as it arrives (the server's framing guarantees it
cannot run past the declared length, and a declared length over the limit is refused up front). A
body without one (chunked upload) is gathered first, up to the limit, so that an oversized upload
gets its 413 before any byte goes upstream. A plugin that must replay a body (retries) calls
``read()``; later readers get the same bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.types import Message, Receive

from gateway.errors import BodyTooLarge, ClientDisconnected


class RequestBody:
    def __init__(self, receive: Receive, *, length: int | None, limit: int) -> None:
        self._receive = receive
        self.length = length
        """The declared ``Content-Length``, or None for a chunked upload."""
        self.limit = limit
        self._buffer: bytes | None = b"" if length == 0 else None
        self._taken = False
        self._done = asyncio.Event()
        if length == 0:
            self._done.set()

    def __repr__(self) -> str:
        state = "buffered" if self._buffer is not None else "streaming" if self._taken else "unread"
        return f"<RequestBody [{state}, length={self.length}, limit={self.limit}]>"

    @property
    def buffered(self) -> bytes | None:
        """The whole body when it has been read into memory, else None."""
        return self._buffer

    async def read(self) -> bytes:
        """The whole body, read once and kept for replays."""
        if self._buffer is None:
            chunks = [chunk async for chunk in self._from_client()]
            self._buffer = b"".join(chunks)
        return self._buffer

    async def prepare(self) -> None:
        """Called before anything is sent upstream: a chunked upload is gathered (and bounded) now."""
        if self.length is None:
            await self.read()

    def stream(self) -> AsyncIterator[bytes]:
        """The body as an async iterator: the buffer when there is one, else straight from the client."""
        if self._buffer is not None:
            return _once(self._buffer)
        return self._from_client()

    async def _from_client(self) -> AsyncIterator[bytes]:
        if self._taken:
            raise RuntimeError("the request body was already streamed and cannot be read again")
        self._taken = True
        received = 0
        more = True
        while more:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected("the client closed the connection while sending the body")
            chunk: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            received += len(chunk)
            if received > self.limit:
                raise BodyTooLarge(f"request body is larger than the limit of {self.limit} bytes")
            if chunk:
                yield chunk
        self._done.set()

    async def wait_for_disconnect(self) -> None:
        """Return once the client has gone away (listens only after the body has been consumed)."""
        await self._done.wait()
        message: Message = await self._receive()
        while message["type"] != "http.disconnect":
            message = await self._receive()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
