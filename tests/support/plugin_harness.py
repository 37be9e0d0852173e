"""The selfhosted plugin driven directly, over httpx's ``MockTransport`` (a real, small fake).

For behaviour no simulated upstream can produce on demand: a body whose close raises, a health
answer httpx cannot decode. End-to-end behaviour is tested through real servers elsewhere.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider
from starlette.types import Message

from gateway.audit import AuditLog
from gateway.clock import FakeClock
from gateway.context import RequestContext
from gateway.plugin import PluginContext, Reply
from gateway.request import ProxyRequest
from gateway.settings import PluginSettings
from gateway.upstream import Target, Upstream
from plugins.selfhosted.config import SelfHostedConfig
from plugins.selfhosted.plugin import SelfHostedPlugin

Handler = Callable[[httpx.Request], httpx.Response]


async def settle(rounds: int = 50) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def start_plugin(
    config: dict[str, Any], handler: Handler, clock: FakeClock
) -> tuple[SelfHostedPlugin, httpx.AsyncClient]:
    plugin = SelfHostedPlugin(SelfHostedConfig.model_validate(config), random.Random(0))
    transport = httpx.MockTransport(handler)
    client = httpx.AsyncClient(transport=transport)
    context = PluginContext(
        upstream=Upstream(transport),
        cloud=Target("cloud", "http://cloud.test", httpx.Timeout(5)),
        http=client,
        clock=clock,
        tracer_provider=NoOpTracerProvider(),
        meter_provider=NoOpMeterProvider(),
        settings=PluginSettings(None, "selfhosted"),
        audit=AuditLog(None, clock),
    )
    await plugin.startup(context)
    await settle()
    return plugin, client


def image_request(body: bytes = b'{"prompt": "x"}') -> ProxyRequest:
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/images/generations",
        "raw_path": b"/v1/images/generations",
        "query_string": b"",
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
    }
    return ProxyRequest.from_scope(scope, receive, RequestContext("request-1", 0.0), 1_000_000)


async def play(reply: Reply) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await reply({"type": "http"}, receive, send)
    return sent


def loads(plugin: SelfHostedPlugin) -> dict[str, int]:
    return {endpoint.id: endpoint.in_flight for endpoint in plugin.running.store.endpoints()}
