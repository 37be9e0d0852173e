"""The lifespan: opens the shared HTTP client, the tracer and the plugins; closes them in reverse."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import TracerProvider

from config import CloudConfig, GatewayConfig
from gateway.clock import Clock
from gateway.headers import bearer
from gateway.loading import AnyPlugin
from gateway.plugin import PluginContext
from gateway.state import STATE_KEY, Runtime
from gateway.telemetry import (
    build_meter_provider,
    build_tracer_provider,
    redact_client_span,
    shutdown_meter_provider,
    shutdown_tracer_provider,
)
from gateway.upstream import Target, Upstream

logger = logging.getLogger("gateway")

# Below the 5 s idle timeout common to upstream servers (uvicorn, gunicorn), so a pooled connection
# is not reused at the moment the server closes it.
KEEPALIVE_EXPIRY = 4.0


def cloud_target(cloud: CloudConfig) -> Target:
    key = cloud.api_key.get_secret_value() if cloud.api_key else None
    return Target(
        route="cloud",
        base_url=cloud.base_url,
        timeout=httpx.Timeout(cloud.timeout, connect=cloud.connect_timeout, pool=cloud.timeout),
        drop_headers=frozenset({b"authorization"}) if key else frozenset(),
        extra_headers=(bearer(key),) if key else (),
    )


@asynccontextmanager
async def open_runtime(
    config: GatewayConfig, plugins: Sequence[AnyPlugin], clock: Clock
) -> AsyncIterator[dict[str, Any]]:
    """Lifespan: yields the lifespan state; everything opened here is closed in reverse order."""
    async with AsyncExitStack() as stack:
        provider = build_tracer_provider(config.telemetry)
        stack.callback(shutdown_tracer_provider, provider)
        meters = build_meter_provider(config.telemetry)
        stack.callback(shutdown_meter_provider, meters)
        client = await stack.enter_async_context(_http_client(config.cloud, provider))
        upstream = Upstream(client)
        cloud = cloud_target(config.cloud)
        context = PluginContext(
            upstream=upstream,
            cloud=cloud,
            http=client,
            clock=clock,
            tracer_provider=provider,
            meter_provider=meters,
        )
        for plugin in plugins:
            await plugin.startup(context)
            stack.push_async_callback(_shutdown, plugin)
        logger.info(
            "gateway started: plugins=%s cloud=%s",
            [plugin.name for plugin in plugins] or "none",
            cloud.base_url,
        )
        tracer = provider.get_tracer("influgen-gateway") if isinstance(provider, SdkTracerProvider) else None
        yield {STATE_KEY: Runtime(upstream=upstream, cloud=cloud, tracer=tracer)}


def _http_client(cloud: CloudConfig, provider: TracerProvider) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=cloud.max_connections,
            max_keepalive_connections=cloud.max_connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
        timeout=httpx.Timeout(cloud.timeout, connect=cloud.connect_timeout),
        follow_redirects=False,
        trust_env=False,
    )
    if isinstance(provider, SdkTracerProvider):
        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=provider, request_hook=redact_client_span
        )
    return client


async def _shutdown(plugin: AnyPlugin) -> None:
    try:
        await plugin.shutdown()
    except Exception:
        logger.exception("plugin %s failed to shut down cleanly", plugin.name)
