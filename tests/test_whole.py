"""Receiving an upstream answer whole, up to a limit, and handing the rest over to streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.whole import WholeResponse, receive_whole

pytestmark = pytest.mark.anyio

BODY = bytes(range(256)) * 40  # 10,240 bytes


class Chunked(httpx.AsyncByteStream):
    """A body of unknown length arriving in pieces, as a chunked upstream answer does."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece = data, piece
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.piece):
            yield self.data[start : start + self.piece]

    async def aclose(self) -> None:
        self.closed = True


async def drain(rest: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in rest])


async def test_an_answer_within_the_limit_is_read_whole() -> None:
    response = httpx.Response(200, stream=Chunked(BODY, 1000))
    received = await receive_whole(response, limit=len(BODY))
    assert received.whole
    assert received.body == BODY
    assert received.size == len(BODY)


async def test_a_declared_length_over_the_limit_reads_nothing() -> None:
    response = httpx.Response(200, headers={"content-length": str(len(BODY))}, stream=Chunked(BODY, 1000))
    received = await receive_whole(response, limit=len(BODY) - 1)
    assert not received.whole
    assert received.chunks == []
    assert await drain(received.rest) == BODY


async def test_an_unknown_length_over_the_limit_stops_there_and_loses_nothing() -> None:
    response = httpx.Response(200, stream=Chunked(BODY, 1000))
    received = await receive_whole(response, limit=2500)
    assert not received.whole
    assert received.size == 3000, "reading stops at the first chunk past the limit"
    assert received.body + await drain(received.rest) == BODY


async def test_an_upstream_failing_mid_answer_raises_httpx_transport_errors() -> None:
    class Dies(Chunked):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield self.data[:100]
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    with pytest.raises(httpx.RemoteProtocolError):
        await receive_whole(httpx.Response(200, stream=Dies(BODY, 100)), limit=len(BODY))


async def test_a_whole_response_has_an_exact_length_and_no_hop_by_hop_headers() -> None:
    upstream = httpx.Response(
        200,
        headers=[
            ("content-type", "application/json"),
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive"),
            ("x-request-id", "upstream-1"),
        ],
        stream=Chunked(b'{"data": []}', 4),
    )
    reply = WholeResponse.of(upstream, await receive_whole(upstream, limit=1024))
    messages: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        messages.append(message)

    async def receive() -> dict[str, object]:
        raise AssertionError("a whole response reads nothing from the client")

    await reply({"type": "http"}, receive, send)  # type: ignore[arg-type]
    start, body = messages
    assert start["status"] == 200
    assert dict(start["headers"]) == {  # type: ignore[call-overload]
        b"content-type": b"application/json",
        b"x-upstream-request-id": b"upstream-1",
        b"content-length": b"12",
    }
    assert body == {"type": "http.response.body", "body": b'{"data": []}', "more_body": False}
