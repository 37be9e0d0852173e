"""gateway/body.py: the request body, bounded, read once, replayable when buffered."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest
from starlette.types import Message

from gateway.body import RequestBody
from gateway.errors import BodyTooLarge, ClientDisconnected

pytestmark = pytest.mark.anyio


class ScriptedReceive:
    """An ASGI ``receive`` that plays back messages, then waits for ever (like a live connection)."""

    def __init__(self, messages: Sequence[Message]) -> None:
        self.messages = list(messages)
        self.calls = 0

    async def __call__(self) -> Message:
        self.calls += 1
        if self.messages:
            return self.messages.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


def chunks(*parts: bytes) -> list[Message]:
    return [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_read_buffers_once_and_replays() -> None:
    receive = ScriptedReceive(chunks(b"ab", b"cd", b""))
    body = RequestBody(receive, length=4, limit=10)
    assert await body.read() == b"abcd"
    assert await body.read() == b"abcd"
    assert [part async for part in body.stream()] == [b"abcd"]
    assert receive.calls == 3
    assert "buffered" in repr(body)


async def test_stream_passes_chunks_through_and_only_once() -> None:
    body = RequestBody(ScriptedReceive(chunks(b"ab", b"cd")), length=4, limit=10)
    assert [part async for part in body.stream()] == [b"ab", b"cd"]
    with pytest.raises(RuntimeError, match="already streamed"):
        await body.read()


async def test_limit_counts_streamed_bytes() -> None:
    body = RequestBody(ScriptedReceive(chunks(b"12345", b"67890", b"x")), length=None, limit=10)
    with pytest.raises(BodyTooLarge):
        await body.prepare()


async def test_prepare_gathers_a_chunked_body_before_anything_is_sent() -> None:
    receive = ScriptedReceive(chunks(b"a", b"b"))
    body = RequestBody(receive, length=None, limit=10)
    await body.prepare()
    assert body.buffered == b"ab"
    sized = RequestBody(ScriptedReceive(chunks(b"a")), length=1, limit=10)
    await sized.prepare()
    assert sized.buffered is None, "a body with a declared length streams"


async def test_disconnect_while_reading() -> None:
    body = RequestBody(
        ScriptedReceive([*chunks(b"ab", b"cd")[:1], {"type": "http.disconnect"}]), length=4, limit=10
    )
    with pytest.raises(ClientDisconnected):
        await body.read()


async def test_empty_body_needs_no_receive() -> None:
    receive = ScriptedReceive([])
    body = RequestBody(receive, length=0, limit=10)
    assert await body.read() == b""
    assert receive.calls == 0


async def test_disconnect_watch_starts_only_after_the_body() -> None:
    receive = ScriptedReceive([*chunks(b"ab"), {"type": "http.disconnect"}])
    body = RequestBody(receive, length=2, limit=10)
    with anyio.move_on_after(0.05) as watch:
        await body.wait_for_disconnect()
    assert watch.cancelled_caught, "the watch must not consume body messages"
    assert receive.calls == 0
    assert await body.read() == b"ab"
    with anyio.fail_after(1):
        await body.wait_for_disconnect()
