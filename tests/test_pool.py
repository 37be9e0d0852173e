"""The upstream connection pool against a real keep-alive server on 127.0.0.1: reuse, and idle
connections closed once they expire or their server closes them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpcore
import pytest

from gateway.pool import ConnectionPool

pytestmark = pytest.mark.anyio

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class KeepAliveServer:
    port: int = 0
    open: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.all_closed.clear()
        self.writers.append(writer)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            if self.open == 0:
                self.all_closed.set()
            writer.close()


@asynccontextmanager
async def keep_alive_server() -> AsyncIterator[KeepAliveServer]:
    state = KeepAliveServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        await server.wait_closed()


async def get(pool: ConnectionPool, port: int) -> bytes:
    request = httpcore.Request("GET", f"http://127.0.0.1:{port}/", headers=[(b"Host", b"upstream")])
    response = await pool.handle_async_request(request)
    try:
        return b"".join([chunk async for chunk in response.aiter_stream()])
    finally:
        await response.aclose()


async def test_idle_connections_are_reused_then_closed_once_expired() -> None:
    now = [100.0]
    pool = ConnectionPool(max_connections=10, keepalive_expiry=4.0, clock=lambda: now[0])
    async with keep_alive_server() as server:
        assert list(await asyncio.gather(get(pool, server.port), get(pool, server.port))) == [b"ok", b"ok"]
        assert (pool.open_connections, pool.idle_connections) == (2, 2)
        assert await get(pool, server.port) == b"ok"
        assert pool.open_connections == 2, "an idle connection was reused"

        now[0] += 3.0
        assert await pool.close_idle() == 0, "not expired yet"
        now[0] += 2.0
        assert await pool.close_idle() == 2
        assert (pool.open_connections, pool.idle_connections) == (0, 0)
        await asyncio.wait_for(server.all_closed.wait(), 2.0)
        assert await get(pool, server.port) == b"ok", "a new connection after the sweep"
        await pool.aclose()


async def test_an_idle_connection_its_server_closed_is_closed_at_once() -> None:
    pool = ConnectionPool(max_connections=10, keepalive_expiry=60.0)
    async with keep_alive_server() as server:
        assert await get(pool, server.port) == b"ok"
        for writer in server.writers:
            writer.close()
        await asyncio.wait_for(server.all_closed.wait(), 2.0)
        await asyncio.sleep(0.05)  # the FIN reaches the pool's socket
        assert await pool.close_idle() == 1
        assert pool.open_connections == 0
        await pool.aclose()
