"""The upstream network layer against real sockets on 127.0.0.1, under asyncio and uvloop."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpcore
import pytest
import trustme

from gateway.network import HIGH_WATER, AsyncioBackend, AsyncioStream

pytestmark = pytest.mark.anyio

ONE_READ = 256 * 1024  # the most either event loop hands a protocol per socket read
PAYLOAD = bytes(range(256)) * (8 * 1024 * 1024 // 256)  # 8 MiB, every offset distinguishable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"use_uvloop": request.param == "uvloop"})


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def send_payload(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(PAYLOAD)
    await writer.drain()
    writer.close()


async def write_many(stream: httpcore.AsyncNetworkStream, chunk: bytes, times: int, each: float) -> None:
    for _ in range(times):
        await stream.write(chunk, timeout=each)


async def read_all(stream: httpcore.AsyncNetworkStream) -> bytes:
    received = bytearray()
    while chunk := await stream.read(65536, timeout=5):
        assert len(chunk) <= 65536
        received += chunk
    return bytes(received)


async def test_a_fast_sender_fills_at_most_the_high_water_mark_and_one_read() -> None:
    async with serving(send_payload) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert isinstance(stream, AsyncioStream)
        first = await stream.read(65536, timeout=5)
        peak = 0
        for _ in range(20):  # the sender could fill the whole socket buffer meanwhile
            await asyncio.sleep(0.01)
            peak = max(peak, stream.buffered)
        assert HIGH_WATER <= peak <= HIGH_WATER + ONE_READ
        rest = await read_all(stream)
        await stream.aclose()
    assert first + rest == PAYLOAD


async def test_reading_resumes_once_the_reader_catches_up_and_ends_with_empty_reads() -> None:
    async with serving(send_payload) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert await read_all(stream) == PAYLOAD
        assert await stream.read(65536, timeout=1) == b""
        assert stream.get_extra_info("is_readable") is True  # the server closed it: not reusable
        await stream.aclose()


async def test_a_silent_server_times_the_read_out() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    async with serving(silent) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        assert stream.get_extra_info("is_readable") is False  # idle, open: reusable
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(1024, timeout=0.05)
        release.set()
        assert await stream.read(1024, timeout=5) == b""
        await stream.aclose()


async def test_a_server_that_never_reads_times_the_write_out() -> None:
    release = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    async with serving(deaf) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with pytest.raises(httpcore.WriteTimeout):  # 256 MiB: far beyond what loopback buffers
            await write_many(stream, b"x" * 65536, 4096, each=0.1)
        release.set()
        await stream.aclose()


async def test_a_reset_connection_is_a_read_error_and_a_closed_one_a_write_error() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.transport.abort()

    async with serving(reset) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        await stream.write(b"x", timeout=5)
        # The server's abort either reads as a clean end or, with an RST, as a read error.
        with suppress(httpcore.ReadError):
            assert await stream.read(1024, timeout=5) == b""
        await stream.aclose()
        with pytest.raises(httpcore.WriteError):
            await stream.write(b"more", timeout=5)


async def test_nothing_listening_is_a_connect_error() -> None:
    async with serving(send_payload) as port:
        pass  # the port is free again
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)


async def test_tls_streams_with_the_same_ceiling_and_verifies_the_server() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    async def greet_then_send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(5)
        await send_payload(reader, writer)

    async with serving(greet_then_send, tls=server_context) as port:
        plain = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        stream = await plain.start_tls(client_context, server_hostname="127.0.0.1", timeout=5)
        assert isinstance(stream, AsyncioStream)
        assert stream.get_extra_info("ssl_object") is not None
        await stream.write(b"hello", timeout=5)
        first = await stream.read(65536, timeout=5)
        await asyncio.sleep(0.2)
        assert stream.buffered <= HIGH_WATER + ONE_READ
        rest = await read_all(stream)
        await stream.aclose()
        assert first + rest == PAYLOAD

        untrusting = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=5)
        with pytest.raises(httpcore.ConnectError):
            await untrusting.start_tls(ssl.create_default_context(), server_hostname="127.0.0.1", timeout=5)
