"""The shared HTTP client's transport: HTTP/1.1 connections kept per origin, every operation O(1).

httpcore's own pool re-examines every connection it holds (a ``poll()`` syscall for each idle one)
whenever a request starts or ends, so its cost per request grows with the number of connections:
at 64 concurrent requests it spent most of the gateway's CPU there. This pool keeps the idle
connections of each origin on a stack: a request takes the most recently used one (the warmest,
checked once), a finished response puts its connection back, and connections idle for longer than
``keepalive_expiry`` are closed from the other end of the stack as new ones come back.

The pool never makes a request wait: when ``max_connections`` are open it refuses at once
(``httpx.PoolTimeout``); the gateway's own queues are the only place requests wait. The protocol
work is still httpcore's (``AsyncHTTPConnection``), over ``gateway.network``'s sockets (whose read
buffers have a ceiling), and the client is still ``httpx.AsyncClient``.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import anyio
import httpcore
import httpx

from gateway.network import AsyncioBackend

_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """httpcore's exceptions as httpx's, most specific first (what ``httpx.AsyncHTTPTransport`` does)."""
    try:
        yield
    except Exception as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class ConnectionPool:
    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._network_backend = network_backend or AsyncioBackend()
        self._clock = clock
        self._idle: dict[tuple[bytes, bytes, int], deque[tuple[float, httpcore.AsyncHTTPConnection]]] = {}
        self._live: set[httpcore.AsyncHTTPConnection] = set()

    def __repr__(self) -> str:
        idle = self.idle_connections
        return f"<ConnectionPool [{len(self._live) - idle} active, {idle} idle, max {self.max_connections}]>"

    @property
    def open_connections(self) -> int:
        return len(self._live)

    @property
    def idle_connections(self) -> int:
        return sum(len(stack) for stack in self._idle.values())

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        connection = await self._checkout(origin)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._discard(connection)
            raise
        stream = _Returning(response, lambda: self._checkin(origin, connection))
        return httpcore.Response(
            response.status, headers=response.headers, content=stream, extensions=response.extensions
        )

    async def close_idle(self) -> int:
        """Close every idle connection kept longer than ``keepalive_expiry`` or closed by its server;
        returns how many. Without this a connection nobody asks for again would stay open (on our
        side, in CLOSE_WAIT once the server gives up on it) until the gateway stops."""
        now = self._clock()
        stale: list[httpcore.AsyncHTTPConnection] = []
        for stack in self._idle.values():
            fresh = [
                entry
                for entry in stack
                if now - entry[0] <= self.keepalive_expiry and not entry[1].has_expired()
            ]
            if len(fresh) < len(stack):
                kept = {id(connection) for _, connection in fresh}
                stale += [connection for _, connection in stack if id(connection) not in kept]
                # In place: a checkout waiting on a discard may hold this very deque.
                stack.clear()
                stack.extend(fresh)
        for connection in stale:
            await self._discard(connection)
        return len(stale)

    async def aclose(self) -> None:
        for connection in list(self._live):
            await self._discard(connection)
        self._idle.clear()

    async def _checkout(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        stack = self._idle.get(_key(origin))
        while stack:
            _, connection = stack.pop()
            if connection.is_available() and not connection.has_expired():
                return connection
            await self._discard(connection)
        if len(self._live) >= self.max_connections:
            raise httpcore.PoolTimeout(f"all {self.max_connections} upstream connections are in use")
        connection = httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self.keepalive_expiry,
            network_backend=self._network_backend,
        )
        self._live.add(connection)
        return connection

    async def _checkin(self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection) -> None:
        if not connection.is_idle():  # closed, or the body was not read to its end
            await self._discard(connection)
            return
        now = self._clock()
        stack = self._idle.setdefault(_key(origin), deque())
        stack.append((now, connection))
        while stack and now - stack[0][0] > self.keepalive_expiry:
            await self._discard(stack.popleft()[1])

    async def _discard(self, connection: httpcore.AsyncHTTPConnection) -> None:
        if connection in self._live:
            self._live.discard(connection)
            await connection.aclose()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return (origin.scheme, origin.host, origin.port)  # httpcore's Origin is not hashable


class _Returning:
    """A response body that hands its connection back to the pool once it is closed."""

    def __init__(self, response: httpcore.Response, checkin: Callable[[], Awaitable[None]]) -> None:
        self._response = response
        self._checkin = checkin
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_stream():
            yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self._response.aclose()
            finally:
                await self._checkin()


class PooledTransport(httpx.AsyncBaseTransport):
    """``httpx.AsyncClient(transport=PooledTransport(...))``: httpx's API over ``ConnectionPool``."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def __repr__(self) -> str:
        return f"<PooledTransport {self.pool!r}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("the gateway's client sends async request bodies only")
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            response = await self.pool.handle_async_request(core)
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=_MappedStream(response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


class _MappedStream(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._response.aiter_stream():
                yield chunk

    async def aclose(self) -> None:
        with _mapped():
            await self._response.aclose()
