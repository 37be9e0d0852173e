"""Sending a client request to an upstream over the one shared ``httpx.AsyncClient``.

``Target`` says where a request goes and which credentials it carries; ``Upstream.open`` sends the
request and returns once the response head has arrived, with the body still unread, so a caller can
decide from the status whether to stream it to the client or to close it and try elsewhere.
Transport failures are mapped here, at the boundary, to the gateway's own errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx

from gateway.errors import PoolExhausted, UpstreamTimeout, UpstreamUnreachable
from gateway.headers import Header, upstream_headers
from gateway.request import ProxyRequest
from gateway.streaming import OnClose, StreamedResponse

logger = logging.getLogger("gateway.upstream")


@dataclass(frozen=True, slots=True)
class Target:
    """An upstream a request can be sent to."""

    route: str
    """Who answers, as ``X-Gateway-Route`` shows it: ``cloud`` or ``selfhosted/<endpoint-id>``."""
    base_url: str
    timeout: httpx.Timeout
    drop_headers: frozenset[bytes] = frozenset()
    """Client headers this upstream must never see (e.g. the client's credentials)."""
    extra_headers: tuple[Header, ...] = field(default=(), repr=False)
    """Headers this upstream needs (e.g. its own ``Authorization``); kept out of ``repr``."""


class Upstream:
    """Sends straight to the shared client's transport: the proxy needs none of what
    ``AsyncClient.send`` adds (auth flows, redirects, a cookie jar), and skipping it saves CPU on
    every request. Instrumentation wraps the transport, so upstream calls are still traced."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    def __repr__(self) -> str:
        return f"<Upstream transport={self.transport!r}>"

    async def open(self, request: ProxyRequest, target: Target) -> httpx.Response:
        """Send ``request`` to ``target``; return the response with its body not yet read.

        Raises ``UpstreamUnreachable`` (502), ``UpstreamTimeout`` (504) or ``PoolExhausted`` (503, the
        gateway's own pool is full: no verdict on the upstream). ``BodyTooLarge`` and
        ``ClientDisconnected`` from reading the client's body pass through unchanged.
        """
        await request.body.prepare()
        outgoing = self._build(request, target)
        try:
            response = await self.transport.handle_async_request(outgoing)
        except httpx.PoolTimeout as exc:
            logger.error("no free upstream connection for %s request_id=%s", target.route, request.request_id)
            raise PoolExhausted(
                "the gateway has no free upstream connection; try again", code="gateway_busy"
            ) from exc
        except httpx.TimeoutException as exc:
            logger.warning(
                "upstream %s timed out: %s request_id=%s",
                target.route,
                type(exc).__name__,
                request.request_id,
            )
            raise UpstreamTimeout(f"the upstream ({target.route}) did not answer in time") from exc
        except httpx.TransportError as exc:
            logger.warning(
                "upstream %s unreachable: %s request_id=%s",
                target.route,
                type(exc).__name__,
                request.request_id,
            )
            if isinstance(exc, httpx.ConnectError):
                message = f"the upstream ({target.route}) could not be reached"
            else:  # reached, but the connection broke before a complete head came back
                message = f"the upstream ({target.route}) dropped the connection before answering"
            raise UpstreamUnreachable(f"{message} ({type(exc).__name__})") from exc
        response.request = outgoing
        return response

    async def forward(
        self, request: ProxyRequest, target: Target, on_close: OnClose | None = None
    ) -> StreamedResponse:
        """Send ``request`` to ``target`` and return its response, ready to stream to the client."""
        request.route = target.route
        response = await self.open(request, target)
        return StreamedResponse(response, request_id=request.request_id, on_close=on_close)

    def _build(self, request: ProxyRequest, target: Target) -> httpx.Request:
        url = target.base_url + request.raw_path.decode("latin-1")
        if request.query:
            url += "?" + request.query.decode("latin-1")
        headers = upstream_headers(
            request.raw_headers,
            request_id=request.request_id,
            client_host=request.client_host,
            scheme=request.scheme,
            drop=target.drop_headers,
            extra=target.extra_headers,
        )
        body = request.body
        content = body.buffered if body.buffered is not None else body.stream()
        # httpx.Request directly, not client.build_request: the client's default headers
        # (Accept-Encoding, User-Agent, ...) must not be added to what the client sent.
        outgoing = httpx.Request(request.method, url, headers=headers, content=content)
        outgoing.extensions["timeout"] = target.timeout.as_dict()
        return outgoing
