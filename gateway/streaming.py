"""An upstream response streamed to the client as it arrives, and the one place its stream closes.

Bytes are relayed raw (no decompression), one chunk at a time, with the server's backpressure: a
slow client pauses the upstream read instead of filling memory. Whatever ends the stream — the last
byte sent, the client gone, the upstream dead mid-body — ``__call__``'s ``finally`` closes the
upstream response shielded from cancellation and reports how it ended to ``on_close`` exactly once.

If the upstream dies after the response head went out, the client connection is aborted (returning
without completing the ASGI response makes the server close it): a truncated body is never
presented as a complete 200.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import anyio
import httpx
from starlette.types import Receive, Scope, Send

from gateway.headers import downstream_headers

logger = logging.getLogger("gateway.streaming")


class StreamOutcome(enum.Enum):
    COMPLETED = "completed"
    CLIENT_GONE = "client_gone"
    UPSTREAM_FAILED = "upstream_failed"


OnClose = Callable[[StreamOutcome], Awaitable[None]]
"""Awaited once, shielded from cancellation, after the upstream stream is closed."""


class StreamedResponse:
    def __init__(
        self,
        upstream: httpx.Response,
        *,
        request_id: str,
        on_close: OnClose | None = None,
        received: Sequence[bytes] = (),
        rest: AsyncIterator[bytes] | None = None,
    ) -> None:
        """``received``: body bytes already read, sent first; ``rest``: the raw body iterator they came
        from, continued (by default the body is read from its start)."""
        self.upstream = upstream
        self.request_id = request_id
        self._on_close = on_close
        self._received = received
        self._rest = rest
        self.outcome: StreamOutcome | None = None

    def __repr__(self) -> str:
        state = self.outcome.value if self.outcome else "open"
        return f"<StreamedResponse [{self.upstream.status_code}, {state}]>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = StreamOutcome.CLIENT_GONE
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.upstream.status_code,
                    "headers": downstream_headers(self.upstream.headers.raw),
                }
            )
            for chunk in self._received:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            async for chunk in self._rest or self.upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            outcome = StreamOutcome.COMPLETED
        except httpx.TransportError as exc:
            outcome = StreamOutcome.UPSTREAM_FAILED
            logger.warning(
                "upstream failed mid-body, aborting the client connection: %s request_id=%s",
                type(exc).__name__,
                self.request_id,
            )
        finally:
            await self.aclose(outcome)

    async def aclose(self, outcome: StreamOutcome = StreamOutcome.CLIENT_GONE) -> None:
        """Close the upstream stream and report ``outcome``; later calls do nothing."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        with anyio.CancelScope(shield=True):
            try:
                await self.upstream.aclose()
            finally:
                if self._on_close is not None:
                    await self._on_close(outcome)
