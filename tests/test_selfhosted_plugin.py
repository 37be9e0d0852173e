"""plugins/selfhosted/{plugin,health}.py under failures only a mock transport produces on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.clock import FakeClock
from plugins.selfhosted.health import healthy_interval, unhealthy_interval
from plugins.selfhosted.plugin import SelfHostedPlugin
from tests.support.plugin_harness import image_request, loads, play, settle, start_plugin

pytestmark = pytest.mark.anyio
ENDPOINTS = {"endpoints": [{"id": "a", "name": "a", "url": "http://a.test"}]}


class Body(httpx.AsyncByteStream):
    """A streamed body, as a real transport gives (``content=`` would be read eagerly)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"{}"


def answer(status: int) -> httpx.Response:
    return httpx.Response(status, stream=Body())


def circuit(plugin: SelfHostedPlugin, endpoint_id: str = "a") -> str:
    endpoint = plugin.running.store.endpoint(endpoint_id)
    assert endpoint is not None
    return endpoint.breaker.state.value


class CloseFails(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"{}"

    async def aclose(self) -> None:
        raise httpx.ReadError("connection reset while closing")


async def test_a_probe_failing_unexpectedly_is_an_unhealthy_answer_and_probing_goes_on() -> None:
    clock = FakeClock()
    probes: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        probes.append(clock.monotonic())
        if len(probes) == 2:  # a 200 whose body httpx cannot decode: not a transport error
            return httpx.Response(200, content=b"not gzip", headers={"content-encoding": "gzip"})
        return httpx.Response(200)

    plugin, client = await start_plugin(ENDPOINTS, handler, clock)
    clock.advance(healthy_interval(30))
    await settle()
    endpoint = plugin.running.store.endpoint("a")
    assert endpoint is not None
    assert endpoint.health.value == "unhealthy"
    assert endpoint.last_error is not None
    assert endpoint.last_error.message == "health probe failed: DecodingError"
    clock.advance(unhealthy_interval(30))
    await settle()
    assert len(probes) == 3, "the next probe was scheduled anyway"
    assert endpoint.health.value == "healthy"
    await plugin.shutdown()
    await client.aclose()


async def test_a_failed_answer_whose_close_raises_still_gives_its_token_back() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200)
        return httpx.Response(503, stream=CloseFails())

    plugin, client = await start_plugin({**ENDPOINTS, "routing": {"routing_percentage": 100}}, handler, clock)
    reply = await plugin.handle(image_request())
    assert reply is None, "every attempt failed: on to the cloud"
    assert loads(plugin) == {"a": 0}
    decision = plugin.running.store.routing_log.newest_first()[0]
    assert (decision.reason.value, decision.attempts) == ("retries_exhausted", 3)
    await plugin.shutdown()
    await client.aclose()


async def test_the_requests_own_error_on_the_half_open_trial_is_no_verdict() -> None:
    clock = FakeClock()
    answers = iter([503, 503, 503, 404, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200)
        return answer(next(answers))

    config = {**ENDPOINTS, "routing": {"routing_percentage": 100}, "retries": 0, "health_ttl": 10_000}
    plugin, client = await start_plugin(config, handler, clock)
    for _ in range(3):
        assert await plugin.handle(image_request()) is None
    assert circuit(plugin) == "open"
    clock.advance(300)
    trial = await plugin.handle(image_request())
    assert trial is not None
    sent = await play(trial)
    assert sent[0]["status"] == 404, "passed back as it came"
    assert circuit(plugin) == "half_open", "a 404 proves nothing about the endpoint"
    second_trial = await plugin.handle(image_request())
    assert second_trial is not None
    assert (await play(second_trial))[0]["status"] == 200
    assert circuit(plugin) == "closed"
    assert loads(plugin) == {"a": 0}
    await plugin.shutdown()
    await client.aclose()
