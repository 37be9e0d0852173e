"""The lifespan: opens the shared HTTP client, telemetry, the plugins and the config watcher;
closes them in reverse order."""

from __future__ import annotations

import gc
import http.cookiejar
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import sniffio
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.trace import TracerProvider

from config import CloudConfig, GatewayConfig
from gateway.audit import AuditLog
from gateway.clock import Clock
from gateway.document import ConfigDocument
from gateway.headers import bearer
from gateway.loading import AnyPlugin
from gateway.plugin import PluginContext
from gateway.pool import ConnectionPool, PooledTransport
from gateway.reconfigure import Reconfigurer
from gateway.settings import PluginSettings
from gateway.state import STATE_KEY, Runtime
from gateway.tasks import BackgroundTasks
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
    config: GatewayConfig, plugins: Sequence[AnyPlugin], clock: Clock, document: ConfigDocument | None
) -> AsyncIterator[dict[str, Any]]:
    """Lifespan: yields the lifespan state; everything opened here is closed in reverse order."""
    async with AsyncExitStack() as stack:
        stack.enter_context(_known_async_library())
        provider = build_tracer_provider(config.telemetry)
        stack.callback(shutdown_tracer_provider, provider)
        meters = build_meter_provider(config.telemetry)
        stack.callback(shutdown_meter_provider, meters)
        transport = _transport(config.cloud)
        client = await stack.enter_async_context(_http_client(transport, config.cloud, provider))
        upstream, cloud = Upstream(transport), cloud_target(config.cloud)
        reaper = BackgroundTasks("idle connection reaper")
        reaper.spawn(_reap_idle(transport.pool))
        stack.push_async_callback(reaper.aclose)
        audit = AuditLog(_audit_path(config, document), clock)
        entries = [entry for entry in config.plugins if entry.enabled]
        for plugin, entry in zip(plugins, entries, strict=True):
            context = PluginContext(
                upstream=upstream,
                cloud=cloud,
                http=client,
                clock=clock,
                tracer_provider=provider,
                meter_provider=meters,
                settings=PluginSettings(document, entry.name),
                audit=audit,
            )
            await plugin.startup(context)
            stack.push_async_callback(_shutdown, plugin)
        if document is not None:
            document.subscribe(Reconfigurer(plugins, document.restart_required))
            watcher = BackgroundTasks("config watcher")
            watcher.spawn(_watch(document, config.admin.reload_interval))
            stack.push_async_callback(watcher.aclose)
        logger.info(
            "gateway started: plugins=%s cloud=%s",
            [plugin.name for plugin in plugins] or "none",
            cloud.base_url,
        )
        tracer = provider.get_tracer("influgen-gateway") if isinstance(provider, SdkTracerProvider) else None
        stack.enter_context(_startup_heap_frozen())
        runtime = Runtime(
            upstream=upstream,
            cloud=cloud,
            tracer=tracer,
            pool=transport.pool,
            clock=clock,
            started_at=clock.monotonic(),
        )
        yield {STATE_KEY: runtime}


@contextmanager
def _known_async_library() -> Iterator[None]:
    """Tell sniffio the event loop's thread runs asyncio, so httpcore and anyio stop sniffing for it
    (several times per request, through ``asyncio.current_task()``)."""
    previous = sniffio.thread_local.name
    sniffio.thread_local.name = "asyncio"
    try:
        yield
    finally:
        sniffio.thread_local.name = previous


@contextmanager
def _startup_heap_frozen() -> Iterator[None]:
    """Exempt what startup built (modules, classes, config: some 70,000 objects) from the cyclic
    garbage collector, which otherwise walks all of it in every full collection — a 25 ms pause
    that every request in flight waits out. Objects created while serving are collected as usual."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _audit_path(config: GatewayConfig, document: ConfigDocument | None) -> Path | None:
    if config.admin.audit_log is None:
        return None
    path = Path(config.admin.audit_log)
    if not path.is_absolute() and document is not None:
        path = document.path.parent / path
    return path


async def _reap_idle(pool: ConnectionPool) -> None:
    """Close pooled connections nobody has reused within ``KEEPALIVE_EXPIRY``."""
    while True:
        await anyio.sleep(KEEPALIVE_EXPIRY / 2)
        try:
            await pool.close_idle()
        except Exception:
            logger.exception("closing idle upstream connections failed")


async def _watch(document: ConfigDocument, interval: float) -> None:
    """Pick up hand edits of gateway.yaml within ``interval`` seconds."""
    while True:
        await anyio.sleep(interval)
        try:
            await document.reload()
        except Exception:
            logger.exception("applying the edited gateway.yaml failed")


def _transport(cloud: CloudConfig) -> PooledTransport:
    pool = ConnectionPool(
        max_connections=cloud.max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
        ssl_context=httpx.create_ssl_context(),
    )
    return PooledTransport(pool)


class _RefuseCookies(http.cookiejar.DefaultCookiePolicy):
    """The shared client serves every client: a cookie one upstream sets must never follow another request."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def _http_client(
    transport: PooledTransport, cloud: CloudConfig, provider: TracerProvider
) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        transport=transport,
        cookies=http.cookiejar.CookieJar(policy=_RefuseCookies()),
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
