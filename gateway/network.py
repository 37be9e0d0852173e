"""The upstream connections' network layer: asyncio transports whose read buffer has a ceiling.

httpcore's default backend (anyio's asyncio streams) pauses a socket only once its reader has woken
up, but the event loop hands a protocol everything one readiness event yields — libuv reads up to 32
times 256 KiB in a row — so a fast upstream could queue 8 MiB per connection before the gateway's
reader ran, and ten large answers streamed at once cost the gateway 40 MiB. Here the protocol pauses
its transport the moment it holds ``HIGH_WATER`` bytes, so a connection buffers at most that plus one
read, however fast the upstream; a slow client holds its upstream back instead of the gateway's memory.

Timeouts are timers on the one future a read or a drain waits on, and exceptions are httpcore's own
(``ReadTimeout``, ``ConnectError``, ...), so the pool above maps them exactly as before.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any, cast

import httpcore

HIGH_WATER = 64 * 1024
"""Bytes a connection may hold unread before its transport is paused."""

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Protocol(asyncio.Protocol):
    """Received bytes as a queue of chunks, with the transport paused while the queue is full."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.over_tls = False
        self.buffered = 0
        self.eof = False
        self.lost = False
        self.error: BaseException | None = None
        self._chunks: deque[bytes] = deque()
        self._reading_paused = False
        self._writing_paused = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a stream connection's transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self.buffered += len(data)
        if self.buffered >= HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        _wake(self._read_waiter)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self._read_waiter)
        # Keep a plain TCP connection half-open for httpcore to close; TLS transports close themselves.
        return not self.over_tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        _wake(self._read_waiter)
        _wake(self._drain_waiter)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        _wake(self._drain_waiter)

    @property
    def readable(self) -> bool:
        """A read would return at once: bytes are queued, or the stream has ended."""
        return bool(self._chunks) or self.eof or self.lost

    @property
    def writing_paused(self) -> bool:
        return self._writing_paused and not self.lost

    def take(self, max_bytes: int) -> bytes:
        """At most ``max_bytes`` of what is queued; ``b""`` once the stream has ended cleanly."""
        if not self._chunks:
            if self.error is not None:
                raise httpcore.ReadError(str(self.error) or type(self.error).__name__)
            return b""
        chunk = self._chunks.popleft()
        if len(chunk) > max_bytes:
            self._chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        self.buffered -= len(chunk)
        if self._reading_paused and self.buffered < HIGH_WATER and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    async def wait_readable(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self._read_waiter = loop.create_future()
        try:
            await _with_timer(loop, self._read_waiter, timeout)
        finally:
            self._read_waiter = None

    async def wait_drained(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self._drain_waiter = loop.create_future()
        try:
            await _with_timer(loop, self._drain_waiter, timeout)
        finally:
            self._drain_waiter = None


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def _with_timer(
    loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None], timeout: float | None
) -> None:
    """Await ``waiter``; ``TimeoutError`` if it is still pending after ``timeout`` seconds."""
    timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
    try:
        await waiter
    finally:
        if timer is not None:
            timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, protocol: _Protocol
    ) -> None:
        self._loop = loop
        self._transport = transport
        self._protocol = protocol

    def __repr__(self) -> str:
        peer = self._transport.get_extra_info("peername")
        return f"<AsyncioStream peer={peer} buffered={self.buffered}>"

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return self._protocol.buffered

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.readable:
            try:
                await protocol.wait_readable(self._loop, timeout)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(f"no data within {timeout} s") from exc
        return protocol.take(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._protocol.lost or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if self._protocol.writing_paused:
            try:
                await self._protocol.wait_drained(self._loop, timeout)
            except TimeoutError as exc:
                raise httpcore.WriteTimeout(f"could not send within {timeout} s") from exc
        if self._protocol.lost and self._protocol.error is not None:
            raise httpcore.WriteError(str(self._protocol.error))

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            transport = await asyncio.wait_for(
                self._loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                ),
                timeout,
            )
        except TimeoutError as exc:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout} s") from exc
        except (OSError, ssl.SSLError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc)) from exc
        if transport is None:  # the loop's signature allows it; a stream transport never gives it
            raise httpcore.ConnectError("TLS could not be started on this connection")
        self._protocol.transport = transport
        self._protocol.over_tls = True
        return AsyncioStream(self._loop, transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._transport.get_extra_info("sockname")
        if info == "server_addr":
            return self._transport.get_extra_info("peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        if info == "is_readable":
            # An idle HTTP/1.1 connection with something to read has been closed by the server.
            return self._protocol.readable or _socket_readable(self._transport.get_extra_info("socket"))
        return None


def _socket_readable(sock: socket.socket | None) -> bool:
    if sock is None or sock.fileno() < 0:
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """``httpcore.AsyncHTTPConnection(..., network_backend=AsyncioBackend())``."""

    def __repr__(self) -> str:
        return f"<AsyncioBackend high_water={HIGH_WATER}>"

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(_Protocol, host, port, local_addr=local), timeout
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"could not connect to {host}:{port} within {timeout} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return _opened(loop, transport, protocol, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_unix_connection(_Protocol, path), timeout
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"could not connect to {path} within {timeout} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return _opened(loop, transport, protocol, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _opened(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.BaseTransport,
    protocol: _Protocol,
    socket_options: Iterable[SocketOption] | None,
) -> AsyncioStream:
    sock = transport.get_extra_info("socket")
    for option in socket_options or ():
        sock.setsockopt(*option)
    return AsyncioStream(loop, cast(asyncio.Transport, transport), protocol)
