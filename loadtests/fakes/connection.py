"""One client connection: h11 for the protocol, raw socket access for the misbehaviour.

Handlers get the request head and this connection (the ``Exchange``). They read the body, may
pause, and then answer once: normally, slowly, cut off mid-body, with a reset, or never. Every
wait also watches the socket, so a client that goes away is noticed at once (``ClientGone``)
rather than at the next write. Pipelined bytes that arrive meanwhile are buffered in h11.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import NoReturn

import h11

from loadtests.fakes.messages import RequestHead, Response, error_response

READ_SIZE = 64 * 1024
SLOW_TICK = 0.05
_log = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client closed or broke the connection before the exchange was over."""


class Delivery(enum.Enum):
    """How a response travels: the socket-level faults that still send something."""

    NORMAL = "normal"
    SLOW_HEADERS = "slow_headers"
    SLOW_BODY = "slow_body"
    RESET_MID_BODY = "reset_mid_body"


Handler = Callable[[RequestHead, "Connection"], Awaitable[None]]


class Connection:
    """Serves requests on one socket, one at a time, until either side closes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_main: bool) -> None:
        self.on_main = on_main
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.SERVER)
        self._body: bytes | None = None
        self._head_only = False
        self._closed = False
        self._requests = 0
        self._admin_requests = 0

    def __repr__(self) -> str:
        peer = self._writer.get_extra_info("peername")
        state = "closed" if self._closed else f"{self._h11.our_state.__name__}"
        return f"<Connection {peer} {state} main={self.on_main}>"

    async def serve(self, handler: Handler) -> None:
        """Run request/response cycles until the connection ends; never raises."""
        try:
            while not self._closed:
                event = await self._next_event()
                if not isinstance(event, h11.Request):
                    break
                await self._cycle(event, handler)
        except ClientGone:
            pass
        except h11.RemoteProtocolError as exc:
            await self._answer_error(400, f"malformed HTTP request: {exc}", "invalid_request_error")
        except Exception:
            _log.exception("fake upstream handler failed")
            await self._answer_error(500, "the fake upstream failed", "server_error")
        finally:
            await self._close()

    @property
    def counts_as_open(self) -> bool:
        """False once it has carried only control requests, so control clients stay invisible."""
        return self._requests == 0 or self._admin_requests < self._requests

    def mark_admin(self) -> None:
        """Note that the current request is a control request."""
        self._admin_requests += 1

    async def read_body(self) -> bytes:
        """The whole request body (read once, then cached)."""
        if self._body is not None:
            return self._body
        if self._h11.they_are_waiting_for_100_continue:
            await self._write(self._h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        parts: list[bytes] = []
        try:
            while not isinstance(event := await self._next_event(), h11.EndOfMessage):
                if not isinstance(event, h11.Data):
                    raise ClientGone
                parts.append(bytes(event.data))
        except h11.RemoteProtocolError as exc:
            raise ClientGone from exc
        self._body = b"".join(parts)
        return self._body

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` while watching the socket; ``ClientGone`` if the client leaves meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            await self._watch(remaining)

    async def hang(self) -> NoReturn:
        """Never answer: wait until the client goes, then raise ``ClientGone``."""
        while True:
            await self._watch(3600.0)

    def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0), dropping anything not yet sent."""
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    def abort(self) -> None:
        """Drop the connection at once; pending reads see end of file, writes fail (``ClientGone``)."""
        self._writer.transport.abort()
        self._closed = True

    async def send(
        self, response: Response, delivery: Delivery = Delivery.NORMAL, *, pause: float = 0.0, rate: int = 1
    ) -> None:
        """Send ``response``: ``pause`` is the slow_headers gap, ``rate`` the slow_body bytes/s."""
        head = self._h11.send(_h11_response(response))
        if delivery is Delivery.SLOW_HEADERS:
            line_end = head.index(b"\r\n") + 2
            await self._write(head[:line_end])
            await self.pause(pause)
            head = head[line_end:]
        await self._write(head)
        if self._head_only:
            await self._write(self._h11.send(h11.EndOfMessage()))
            return
        if delivery is Delivery.RESET_MID_BODY:
            await self._send_half_then_reset(response)
            return
        started = False
        for piece in response.body.produce():
            if delivery is Delivery.SLOW_BODY:
                await self._dribble(piece, rate, pause_first=started)
                started = True
            else:
                await self._write(self._h11.send(h11.Data(data=piece)))
        await self._write(self._h11.send(h11.EndOfMessage()))

    async def _cycle(self, event: h11.Request, handler: Handler) -> None:
        self._body = None
        self._requests += 1
        self._head_only = event.method == b"HEAD"
        await handler(RequestHead.parse(event.method, event.target, list(event.headers)), self)
        if self._closed:
            return
        if self._h11.our_state is h11.SEND_RESPONSE:
            raise RuntimeError("handler returned without answering")
        if self._h11.their_state is h11.SEND_BODY:
            await self.read_body()  # the handler did not need it, but h11 must see it all
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
        else:
            self._closed = True

    async def _send_half_then_reset(self, response: Response) -> None:
        total = response.body.length if response.body.length is not None else READ_SIZE
        for piece in response.body.truncated(total // 2).produce():
            await self._write(self._h11.send(h11.Data(data=piece)))
        # The half must be in the kernel before the reset, which would otherwise discard it.
        self._writer.transport.set_write_buffer_limits(high=0)
        await self._drain()
        # Off loopback, a reset also discards sent-but-unacknowledged bytes: give them a moment.
        await asyncio.sleep(SLOW_TICK)
        self.reset()

    async def _dribble(self, piece: bytes, rate: int, *, pause_first: bool) -> None:
        """Send ``piece`` at ``rate`` bytes/s, pausing between writes: once the last byte is out
        the response is over, with no pause after it (a client may already have moved on)."""
        step = max(1, int(rate * SLOW_TICK))
        for start in range(0, len(piece), step):
            if start or pause_first:
                await self.pause(step / rate)
            await self._write(self._h11.send(h11.Data(data=piece[start : start + step])))

    async def _next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            try:
                data = await self._reader.read(READ_SIZE)
            except OSError as exc:
                raise ClientGone from exc
            self._h11.receive_data(data)

    async def _watch(self, seconds: float) -> None:
        """Read for up to ``seconds``, keeping what arrives for h11; ``ClientGone`` on EOF."""
        try:
            async with asyncio.timeout(seconds):
                data = await self._reader.read(READ_SIZE)
        except TimeoutError:
            return
        except OSError as exc:
            raise ClientGone from exc
        if not data:
            raise ClientGone
        self._h11.receive_data(data)

    async def _write(self, data: bytes | None) -> None:
        if self._closed or self._writer.is_closing():
            raise ClientGone
        if data:
            self._writer.write(data)
            await self._drain()

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except OSError as exc:
            raise ClientGone from exc

    async def _answer_error(self, status: int, message: str, error_type: str) -> None:
        if self._closed or self._h11.our_state not in {h11.IDLE, h11.SEND_RESPONSE}:
            return
        with contextlib.suppress(ClientGone, h11.LocalProtocolError):
            await self.send(error_response(status, message, error_type))

    async def _close(self) -> None:
        if self._writer.is_closing():
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def _h11_response(response: Response) -> h11.Response:
    framing = (
        ("Content-Length", str(response.body.length))
        if response.body.length is not None
        else ("Transfer-Encoding", "chunked")
    )
    return h11.Response(
        status_code=response.status,
        headers=[*response.headers, framing],
        reason=response.reason.encode(),
    )
