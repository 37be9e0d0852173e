"""Dispatch of one request: control routes, health, or an API route wrapped in the fake's misbehaviour.

For an API request the order is: count it, read the body, pick the fault mode (cycle or
``x-fake-fail``), wait the latency, then answer through that mode. The API key is checked after
the fault, as a broken server in front of the auth layer would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import time
from collections.abc import Callable

from loadtests.fakes.admin import PREFIX, handle_admin
from loadtests.fakes.body import PIECE_SIZE, Body, take
from loadtests.fakes.config import FailMode, HealthMode, parse_fail_mode, parse_latency, parse_response_bytes
from loadtests.fakes.connection import ClientGone, Connection, Delivery
from loadtests.fakes.messages import (
    RequestHead,
    Response,
    error_response,
    invalid_request,
    json_response,
    method_not_allowed,
    not_found,
)
from loadtests.fakes.routes import ApiRequest, api_routes, resolve
from loadtests.fakes.state import FakeState
from loadtests.fakes.stats import IN_FLIGHT, RecentRequest

SLOW_HEADERS_DEFAULT_GAP = 5.0
_DELIVERY = {
    FailMode.SLOW_HEADERS: Delivery.SLOW_HEADERS,
    FailMode.SLOW_BODY: Delivery.SLOW_BODY,
    FailMode.RESET_MID_BODY: Delivery.RESET_MID_BODY,
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one API request gets: its fault mode, latency and padded size."""

    mode: FailMode
    latency: float
    response_bytes: int | None


class FakeUpstream:
    """The request handler of one fake; a ``Connection`` calls it once per request."""

    def __init__(self, state: FakeState, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self._routes = api_routes(state.kind)
        self._clock = clock

    def __repr__(self) -> str:
        return f"<FakeUpstream {self.state!r}>"

    async def handle(self, head: RequestHead, exchange: Connection) -> None:
        if head.path.startswith(PREFIX):
            await handle_admin(self.state, head, exchange)
        elif not exchange.on_main:
            await exchange.read_body()
            await exchange.send(not_found(head.path))
        elif head.path == "/health":
            await self._health(head, exchange)
        else:
            await self._api(head, exchange)

    async def _health(self, head: RequestHead, exchange: Connection) -> None:
        self.state.stats.health_checks += 1
        await exchange.read_body()
        if head.method not in {"GET", "HEAD"}:
            await exchange.send(method_not_allowed(head.method, head.path, "GET, HEAD"))
        elif self.state.config.health is HealthMode.HANG:
            await exchange.hang()
        elif self.state.next_health_ok():
            await exchange.send(json_response(200, {"status": "ok"}))
        else:
            await exchange.send(json_response(503, {"status": "unhealthy"}))

    async def _api(self, head: RequestHead, exchange: Connection) -> None:
        stats = self.state.stats
        key, endpoint = resolve(self._routes, head)
        # A client that closed one connection and at once sent a request on another has both
        # events land in the same turn of the event loop; let the close be counted first, so
        # in_flight follows the order of events on the wire rather than the order of file descriptors.
        await asyncio.sleep(0)
        entry = stats.begin(head, key)
        try:
            body = await exchange.read_body()
            entry.record_body(body)
            try:
                plan = self._plan(head)
            except ValueError as exc:
                await self._send(exchange, entry, invalid_request(str(exc)))
                return
            request = ApiRequest(head, body, self._clock(), plan.response_bytes)
            await self._perform(plan, exchange, entry, lambda: self._authorized(request, endpoint))
        except ClientGone:
            if entry.outcome == IN_FLIGHT:
                entry.outcome = "client_closed"
            raise
        finally:
            stats.end(entry)

    def _plan(self, head: RequestHead) -> Plan:
        """The request's plan; override headers win over the config and do not consume a cycle slot."""
        config = self.state.config
        fail, latency, size = (
            head.header(f"x-fake-{name}") for name in ("fail", "latency", "response-bytes")
        )
        plan_latency = parse_latency(latency) if latency is not None else config.latency
        plan_size = parse_response_bytes(size) if size is not None else config.response_bytes
        # Draw last, so that a request refused for a bad header does not advance the cycle.
        mode = parse_fail_mode(fail) if fail is not None else self.state.draw_fail()
        return Plan(mode, plan_latency, plan_size)

    async def _perform(
        self, plan: Plan, exchange: Connection, entry: RecentRequest, answer: Callable[[], Response]
    ) -> None:
        mode = self.state.effective(plan.mode)
        if mode is not FailMode.NONE:
            self.state.stats.faults_injected += 1
            entry.outcome = plan.mode.value
        if mode is FailMode.HANG:
            await exchange.hang()
        if mode is FailMode.SLOW_HEADERS:
            gap = plan.latency or SLOW_HEADERS_DEFAULT_GAP
            await self._send(exchange, entry, answer(), Delivery.SLOW_HEADERS, gap)
            return
        slots = self.state.slots
        async with slots if slots is not None else contextlib.nullcontext():
            entry.started_at = time.monotonic()
            await exchange.pause(plan.latency)
            if mode is FailMode.RESET:
                exchange.reset()
                return
            response = _fault_response(mode) or answer()
            if mode is FailMode.TRUNCATED_JSON:
                response = _truncated(response)
            await self._send(exchange, entry, response, _DELIVERY.get(mode, Delivery.NORMAL))
            entry.finished_at = time.monotonic()

    async def _send(
        self,
        exchange: Connection,
        entry: RecentRequest,
        response: Response,
        delivery: Delivery = Delivery.NORMAL,
        gap: float = 0.0,
    ) -> None:
        entry.status = response.status
        await exchange.send(response, delivery, pause=gap, rate=self.state.config.slow_rate)
        if entry.outcome == IN_FLIGHT:
            entry.outcome = "ok"

    def _authorized(self, request: ApiRequest, endpoint: Callable[[ApiRequest], Response]) -> Response:
        key = self.state.config.api_key
        if key is None:
            return endpoint(request)
        given = request.head.header("authorization") or ""
        if hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return endpoint(request)
        return error_response(401, "missing or wrong API key", "authentication_error", code="invalid_api_key")


def _fault_response(mode: FailMode) -> Response | None:
    status = mode.status
    if status is None:
        return None
    headers = [("Retry-After", "1")] if status == 429 else []
    error_type = {400: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}.get(
        status, "server_error"
    )
    return error_response(status, f"injected fault: {status}", error_type, headers=headers)


def _truncated(response: Response) -> Response:
    """A 200 whose Content-Length matches a body cut at half: valid framing, broken JSON."""
    body, length = response.body, response.body.length
    if length is None:
        # Unknown length: settle for half of its first pieces rather than generating it all.
        data = b"".join(take(body.produce(), 2 * PIECE_SIZE))
        body, length = Body.of(data), len(data)
    return Response(200, [("Content-Type", "application/json")], body.truncated(length // 2))
