"""The ``selfhosted`` plugin: a share of text-to-image and image-to-image requests to your GPUs.

    classify capability ─► split ─► lease a token (or queue) ─► attempt on the endpoint
        ─► success: received whole and checked, the token given back, then sent to the client
        ─► the request's own 4xx, a success larger than ``response_buffer_bytes`` or an event
           stream: streamed back; the token returns when the stream ends
        ─► failure (an error status, no answer, an answer cut short or malformed): next attempt on
           another endpoint (up to ``retries``), then the cloud fallback

Nothing is retried once the first byte of an answer has gone to the client; before that, every
attempt resends the same buffered body. Holding a successful answer until it is whole and valid is
what lets an endpoint that dies mid-answer cost a retry instead of the client's request.

Whatever the self-hosted path cannot serve goes to the cloud exactly as a request the plugin never
claimed would (the plugin passes it on), or, with ``cloud_fallback`` off, gets 503 (504 after a
timeout) with ``Retry-After`` and ``x-should-retry: false``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.routing import BaseRoute

from gateway.clock import deadline
from gateway.errors import (
    GatewayError,
    PoolExhausted,
    ServiceUnavailable,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gateway.plugin import Plugin, PluginContext, Reply
from gateway.request import ProxyRequest
from gateway.streaming import OnClose, StreamedResponse, StreamOutcome
from gateway.tasks import BackgroundTasks
from gateway.whole import WholeResponse, receive_whole
from plugins.selfhosted import admin, openapi
from plugins.selfhosted.attempts import Answer, classify, may_retry
from plugins.selfhosted.config import SelfHostedConfig, with_ids
from plugins.selfhosted.health import HealthMonitor, unhealthy_interval
from plugins.selfhosted.metrics import PluginMetrics
from plugins.selfhosted.routes import RouteTable
from plugins.selfhosted.scheduler import Lease, NotServable, Verdict
from plugins.selfhosted.split import SmoothSplit
from plugins.selfhosted.stats import Decision, Reason
from plugins.selfhosted.store import InMemoryStore, Limits, Store

logger = logging.getLogger("plugins.selfhosted")


@dataclass(frozen=True, slots=True)
class Failure:
    message: str
    timed_out: bool = False


@dataclass(slots=True)
class Exchange:
    """One eligible request on its way through the plugin."""

    request: ProxyRequest
    capability: str
    started: float
    tried: list[str]


@dataclass(frozen=True, slots=True)
class Running:
    context: PluginContext
    store: Store
    health: HealthMonitor
    metrics: PluginMetrics
    tasks: BackgroundTasks


class SelfHostedPlugin(Plugin[SelfHostedConfig]):
    name = "selfhosted"
    Config = SelfHostedConfig

    def __init__(self, config: SelfHostedConfig, rng: random.Random | None = None) -> None:
        super().__init__(config)
        self.routes = RouteTable(config.routes)
        self.split = SmoothSplit(config.routing.routing_percentage)
        self.routing_enabled = config.routing.enabled
        self.rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        self._running: Running | None = None

    @property
    def running(self) -> Running:
        if self._running is None:
            raise RuntimeError("the selfhosted plugin is not started")
        return self._running

    async def startup(self, context: PluginContext) -> None:
        config = self.config
        store = InMemoryStore(Limits.of(config), context.clock, self.rng)
        tasks = BackgroundTasks(self.name)
        health = HealthMonitor(
            store, context.http, context.clock, tasks, path=config.health_path, ttl=config.health_ttl
        )
        self._running = Running(context, store, health, PluginMetrics(context.meter_provider, store), tasks)
        for endpoint_id in await store.configure(with_ids(config.endpoints)):
            health.watch(endpoint_id)

    async def reconfigure(self, config: SelfHostedConfig) -> None:
        """Apply a changed section at once: in-flight requests finish on what they hold."""
        running = self.running
        self.config = config
        self.routes = RouteTable(config.routes)
        self.split.percentage = config.routing.routing_percentage
        self.routing_enabled = config.routing.enabled
        running.health.path, running.health.ttl = config.health_path, config.health_ttl
        for endpoint_id in await running.store.configure(with_ids(config.endpoints), Limits.of(config)):
            running.health.watch(endpoint_id)
        logger.info(
            "selfhosted configuration applied: %d endpoints, routing %s at %g%%",
            len(config.endpoints),
            "on" if config.routing.enabled else "off",
            config.routing.routing_percentage,
        )

    async def shutdown(self) -> None:
        running = self.running
        await running.tasks.aclose()
        await running.health.close()

    def admin_routes(self) -> Sequence[BaseRoute]:
        return admin.routes(self)

    def openapi(self) -> dict[str, Any]:
        return openapi.document()

    def admin_page(self) -> Path:
        return Path(__file__).parent / "static"

    async def handle(self, request: ProxyRequest) -> Reply | None:
        capability = self.routes.classify(request.method, request.path)
        if capability is None:
            return None
        exchange = Exchange(request, capability, self.running.context.clock.monotonic(), [])
        if not self.routing_enabled or not self.split.take():
            reason = Reason.NOT_SELECTED_BY_SPLIT if self.routing_enabled else Reason.ROUTING_DISABLED
            self._log(exchange, "cloud", reason)
            return None
        await request.body.read()  # once, within the size limit: every attempt resends these bytes
        return await self._serve(exchange)

    async def _serve(self, exchange: Exchange) -> Reply | None:
        store = self.running.store
        failure: Failure | None = None
        while may_retry(len(exchange.tried), self.config.retries):
            try:
                lease = await store.lease(exchange.capability, frozenset(exchange.tried))
            except NotServable as refusal:
                self._fall_back(exchange, refusal.reason, failure)
                return None
            exchange.tried.append(lease.endpoint.id)
            outcome = await self._attempt(exchange, lease)
            if not isinstance(outcome, Failure):
                return outcome
            failure = outcome
        self._fall_back(exchange, Reason.RETRIES_EXHAUSTED, failure)
        return None

    async def _attempt(self, exchange: Exchange, lease: Lease) -> Reply | Failure:
        """One try on ``lease``'s endpoint: a reply to stream, or why it failed (token given back)."""
        running = self.running
        opened = running.context.clock.monotonic()
        response = None
        try:
            with deadline(running.context.clock, self.config.timeout):
                response = await running.context.upstream.open(exchange.request, lease.endpoint.target)
        except PoolExhausted as error:
            with anyio.CancelScope(shield=True):
                await running.store.finish(lease, Verdict.NEUTRAL)  # the gateway's pool, not the endpoint
            return Failure(error.message)
        except (UpstreamUnreachable, UpstreamTimeout) as error:
            return await self._failed(lease, Failure(error.message, isinstance(error, UpstreamTimeout)))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await running.store.finish(lease, Verdict.NEUTRAL)
            raise
        if response is None:
            return await self._failed(
                lease, Failure(f"no answer within {self.config.timeout:g} s", timed_out=True)
            )
        return await self._answer(exchange, lease, response, opened)

    async def _answer(
        self, exchange: Exchange, lease: Lease, response: httpx.Response, opened: float
    ) -> Reply | Failure:
        answer = classify(response.status_code)
        if answer is Answer.FAILURE:
            try:
                await _close_quietly(response)
            finally:
                failure = await self._failed(lease, Failure(f"answered HTTP {response.status_code}"))
            return failure
        head_ms = (self.running.context.clock.monotonic() - opened) * 1000
        exchange.request.route = lease.endpoint.target.route
        if answer is Answer.SUCCESS and _checkable(response, self.config.response_buffer_bytes):
            return await self._whole(exchange, lease, response, head_ms)
        on_close = self._on_close(exchange, lease, response.status_code, answer, head_ms)
        return StreamedResponse(response, request_id=exchange.request.request_id, on_close=on_close)

    async def _whole(
        self, exchange: Exchange, lease: Lease, response: httpx.Response, head_ms: float
    ) -> Reply | Failure:
        """Receive a successful answer whole and check it before the client sees a byte: an answer
        cut short or broken is a failure like any other, and the request is tried elsewhere."""
        try:
            received = await receive_whole(response, self.config.response_buffer_bytes)
        except httpx.TransportError as error:
            await _close_quietly(response)
            return await self._failed(lease, _cut_short(error))
        except BaseException:  # the client left while the answer was arriving
            with anyio.CancelScope(shield=True):
                await _close_quietly(response)
                verdict, gone = _VERDICTS[StreamOutcome.CLIENT_GONE]
                await self.running.store.finish(lease, verdict, error=gone)
                self._log(exchange, lease.endpoint.target.route, Reason.SERVED, response.status_code, gone)
            raise
        if not received.whole:  # larger than the limit: stream the rest
            on_close = self._on_close(exchange, lease, response.status_code, Answer.SUCCESS, head_ms)
            return StreamedResponse(
                response,
                request_id=exchange.request.request_id,
                on_close=on_close,
                received=received.chunks,
                rest=received.rest,
            )
        problem = _malformed(response, received.body)
        try:
            await _close_quietly(response)  # its connection goes back to the pool before the token
        finally:
            failure = await self._settle(lease, response.status_code, problem, head_ms)
        if failure is not None:
            return failure
        self._log(exchange, lease.endpoint.target.route, Reason.SERVED, response.status_code, None)
        return WholeResponse.of(response, received)

    async def _settle(self, lease: Lease, status: int, problem: str | None, head_ms: float) -> Failure | None:
        """Give back the token of a whole answer: a success, or a failure when ``problem`` says so."""
        if problem is not None:
            return await self._failed(lease, Failure(f"answered HTTP {status} {problem}"))
        with anyio.CancelScope(shield=True):
            await self.running.store.finish(lease, Verdict.SUCCESS, latency_ms=head_ms)
        return None

    async def _failed(self, lease: Lease, failure: Failure) -> Failure:
        logger.warning("self-hosted endpoint %s failed: %s", lease.endpoint.id, failure.message)
        with anyio.CancelScope(shield=True):
            await self.running.store.finish(lease, Verdict.FAILURE, error=failure.message)
        return failure

    def _on_close(
        self, exchange: Exchange, lease: Lease, status: int, answer: Answer, head_ms: float
    ) -> OnClose:
        async def closed(outcome: StreamOutcome) -> None:
            verdict, error = _VERDICTS[outcome]
            if answer is Answer.REQUEST_ERROR and verdict is Verdict.SUCCESS:
                verdict = Verdict.NEUTRAL  # the request's own fault says nothing about the endpoint
            latency_ms = head_ms if verdict is Verdict.SUCCESS else None
            await self.running.store.finish(lease, verdict, latency_ms=latency_ms, error=error)
            self._log(exchange, lease.endpoint.target.route, Reason.SERVED, status, error)

        return closed

    def _fall_back(self, exchange: Exchange, reason: Reason, failure: Failure | None) -> None:
        """Log the fallback and return, so the request goes on to the cloud; or raise, with fallback off."""
        error = failure.message if failure else None
        if self.config.cloud_fallback:
            self._log(exchange, "cloud", reason, error=error)
            return
        self._log(exchange, "none", reason, error=error)
        exchange.request.route = self.name
        raise self._unavailable(exchange.capability, reason, failure)

    def _unavailable(self, capability: str, reason: Reason, failure: Failure | None) -> GatewayError:
        headers = {"Retry-After": str(self._retry_after(capability, reason)), "x-should-retry": "false"}
        message = (
            f"no self-hosted endpoint could serve this request ({reason.value}) and cloud fallback is off"
        )
        if failure is not None and failure.timed_out:
            return UpstreamTimeout(message, code=reason.value, headers=headers)
        return ServiceUnavailable(message, code=reason.value, headers=headers)

    def _retry_after(self, capability: str, reason: Reason) -> int:
        running = self.running
        if reason is Reason.CIRCUIT_OPEN:
            now = running.context.clock.monotonic()
            resets = [
                at
                for endpoint in running.store.endpoints()
                if endpoint.config.status == "active" and capability in endpoint.config.capabilities
                if (at := endpoint.breaker.reset_at) is not None
            ]
            return max(1, math.ceil(min(resets, default=now + 1) - now))
        if reason is Reason.ALL_UNHEALTHY:
            return max(1, math.ceil(unhealthy_interval(self.config.health_ttl)))
        return 1

    def _log(
        self,
        exchange: Exchange,
        target: str,
        reason: Reason,
        status: int | None = None,
        error: str | None = None,
    ) -> None:
        running = self.running
        served = reason is Reason.SERVED
        latency = (running.context.clock.monotonic() - exchange.started) * 1000 if served else None
        decision = Decision(
            at=running.context.clock.wall(),
            request_id=exchange.request.request_id,
            capability=exchange.capability,
            target=target,
            reason=reason,
            attempts=len(exchange.tried),
            status=status,
            latency_ms=latency,
            error=error,
        )
        running.store.log(decision)
        running.metrics.record(decision)
        if reason is not Reason.SERVED:
            exchange.request.context.notes["selfhosted"] = reason.value


_VERDICTS: dict[StreamOutcome, tuple[Verdict, str | None]] = {
    StreamOutcome.COMPLETED: (Verdict.SUCCESS, None),
    StreamOutcome.UPSTREAM_FAILED: (Verdict.FAILURE, "connection lost mid-body"),
    StreamOutcome.CLIENT_GONE: (Verdict.NEUTRAL, "client disconnected"),
}


def _cut_short(error: httpx.TransportError) -> Failure:
    timed_out = isinstance(error, httpx.TimeoutException)
    how = "stopped" if timed_out else "dropped the connection"
    return Failure(f"{how} mid-answer ({type(error).__name__})", timed_out)


def _checkable(response: httpx.Response, limit: int) -> bool:
    """Whether a successful answer is received whole before it is passed on (event streams never are)."""
    content_type = response.headers.get("content-type", "")
    return limit > 0 and not content_type.startswith("text/event-stream")


def _malformed(response: httpx.Response, body: bytes) -> str | None:
    """What is wrong with a whole answer that says it is JSON, or None. A compressed body is not
    decoded: its length was already checked by the HTTP framing."""
    media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity" or not (media_type == "application/json" or media_type.endswith("+json")):
        return None
    try:
        json.loads(body)
    except ValueError:
        return f"with a malformed JSON body ({len(body)} bytes)"
    return None


async def _close_quietly(response: httpx.Response) -> None:
    """Close ``response``, shielded; its connection may already be broken, which changes nothing."""
    with anyio.CancelScope(shield=True), contextlib.suppress(httpx.HTTPError):
        await response.aclose()
