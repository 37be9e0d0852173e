"""Background health probes: ``GET {url}{health_path}``, never on the request path.

Each endpoint is probed when it appears (disabled ones too, so an admin sees whether one is back
before turning it on), then again early enough that the next result lands before the last one stops
being trusted (``healthy_interval``), or every few seconds while it is not healthy. A slow or hanging
probe only delays that endpoint's next result; requests never wait for one. An endpoint whose
result has expired counts as unknown and receives nothing until a probe succeeds.

Results go through an aiocache cache with ``health_ttl`` as the TTL: in memory today; with the
Redis backend, replicas share results and a fresh one from another replica saves a probe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from aiocache import SimpleMemoryCache

from gateway.clock import Clock, Timer
from gateway.tasks import BackgroundTasks
from gateway.upstream import Target
from plugins.selfhosted.store import Store

logger = logging.getLogger("plugins.selfhosted.health")
MAX_PROBE_SECONDS = 10.0
UNHEALTHY_RETRY_SECONDS = 5.0
MAX_CONCURRENT_PROBES = 32


def probe_timeout(ttl: float) -> float:
    return min(ttl / 4, MAX_PROBE_SECONDS)


def healthy_interval(ttl: float) -> float:
    """When to probe a healthy endpoint again: early enough that even a probe that takes its whole
    timeout lands before the last result stops being trusted."""
    return ttl - probe_timeout(ttl) - min(1.0, ttl / 10)


def unhealthy_interval(ttl: float) -> float:
    return min(ttl / 3, UNHEALTHY_RETRY_SECONDS)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    endpoint_id: str
    url: str
    healthy: bool
    error: str | None
    at: float
    """Unix time of the probe."""


class HealthMonitor:
    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        clock: Clock,
        tasks: BackgroundTasks,
        *,
        path: str,
        ttl: float,
    ) -> None:
        self.store = store
        self.tasks = tasks
        self.http = http
        self.clock = clock
        self.path = path
        self.ttl = ttl
        self.cache: Any = SimpleMemoryCache()
        self._timers: dict[str, Timer] = {}
        self._probing: set[tuple[str, str]] = set()
        self._limit = anyio.Semaphore(MAX_CONCURRENT_PROBES)

    def __repr__(self) -> str:
        probing = sorted(endpoint_id for endpoint_id, _ in self._probing)
        return f"<HealthMonitor probing={probing} scheduled={len(self._timers)}>"

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await self.cache.close()

    def watch(self, endpoint_id: str) -> None:
        """Probe ``endpoint_id`` now (a new endpoint, or a new URL), then keep probing it on schedule."""
        if endpoint_id in self._timers:
            self._timers.pop(endpoint_id).cancel()
        self._starter(endpoint_id)()

    async def probe_all(self) -> list[ProbeResult]:
        """Probe every endpoint now (the admin's refresh) and return the results."""
        results: list[ProbeResult] = []

        async def one(endpoint_id: str) -> None:
            results.append(await self._probe_once(endpoint_id))

        async with anyio.create_task_group() as tasks:
            for endpoint in self.store.endpoints():
                tasks.start_soon(one, endpoint.id)
        return sorted(results, key=lambda result: result.endpoint_id)

    def _schedule(self, endpoint_id: str, delay: float) -> None:
        if endpoint_id in self._timers:
            self._timers.pop(endpoint_id).cancel()
        self._timers[endpoint_id] = self.clock.call_later(delay, self._starter(endpoint_id))

    def _starter(self, endpoint_id: str) -> Callable[[], None]:
        def start() -> None:
            self._timers.pop(endpoint_id, None)
            endpoint = self.store.endpoint(endpoint_id)
            if endpoint is not None and (endpoint_id, endpoint.config.url) not in self._probing:
                self.tasks.spawn(self._probe_and_reschedule(endpoint_id))

        return start

    async def _probe_and_reschedule(self, endpoint_id: str) -> None:
        healthy = False
        try:
            result = await self._shared_result(endpoint_id) or await self._probe_once(endpoint_id)
            healthy = result.healthy
        except Exception:
            logger.exception("health probe of %s failed unexpectedly", endpoint_id)
        finally:
            if self.store.endpoint(endpoint_id) is not None:
                interval = healthy_interval(self.ttl) if healthy else unhealthy_interval(self.ttl)
                self._schedule(endpoint_id, interval)

    async def _probe_once(self, endpoint_id: str) -> ProbeResult:
        endpoint = self.store.endpoint(endpoint_id)
        if endpoint is None:
            return ProbeResult(endpoint_id, "", False, "endpoint removed", self.clock.wall())
        key = (endpoint_id, endpoint.config.url)
        self._probing.add(key)
        try:
            async with self._limit:
                result = await self._probe(endpoint_id, endpoint.target)
        finally:
            self._probing.discard(key)
        await self.cache.set(_key(endpoint_id), result, ttl=self.ttl)
        await self.store.record_probe(endpoint_id, result.url, result.healthy, result.error)
        return result

    async def _shared_result(self, endpoint_id: str) -> ProbeResult | None:
        """A result newer than ours that another replica put in a shared cache, if there is one."""
        cached = await self.cache.get(_key(endpoint_id))
        endpoint = self.store.endpoint(endpoint_id)
        if not isinstance(cached, ProbeResult) or endpoint is None:
            return None
        if cached.at <= (endpoint.probed_at or 0.0):
            return None
        await self.store.record_probe(endpoint_id, cached.url, cached.healthy, cached.error)
        return cached

    async def _probe(self, endpoint_id: str, target: Target) -> ProbeResult:
        timeout = probe_timeout(self.ttl)
        error: str | None
        try:
            response = await self.http.get(
                target.base_url + self.path,
                headers=list(target.extra_headers),
                timeout=timeout,
                follow_redirects=False,
            )
            status = response.status_code
            error = None if 200 <= status < 300 else f"health probe answered HTTP {status}"
        except httpx.TimeoutException:
            error = f"health probe timed out after {timeout:g} s"
        except Exception as exc:  # any failure to get an answer is an unhealthy answer
            error = f"health probe failed: {type(exc).__name__}"
        return ProbeResult(endpoint_id, target.base_url, error is None, error, self.clock.wall())


def _key(endpoint_id: str) -> str:
    return f"selfhosted:health:{endpoint_id}"
