"""The seam between the plugin's decisions and the state they read and change.

Tokens, queue bookkeeping, breaker state, health and telemetry all live behind ``Store``. The
plugin never touches them directly, so several gateway replicas can later share them through
Redis: ``lease``/``finish`` map to an atomic script over per-endpoint counters plus a
notification channel for hand-overs, ``record_probe`` to a shared health key (aiocache's Redis
backend), and ``log`` to a capped list. ``InMemoryStore`` is the one-process implementation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.clock import Clock
from plugins.selfhosted.config import EndpointConfig, SelfHostedConfig
from plugins.selfhosted.fleet import EndpointState, Fleet, Health, Settings
from plugins.selfhosted.scheduler import Lease, QueueView, Scheduler, Verdict
from plugins.selfhosted.stats import Decision, LastError, RoutingLog


@dataclass(frozen=True, slots=True)
class Limits:
    settings: Settings
    queue_max_size: int
    queue_max_wait: float

    @classmethod
    def of(cls, config: SelfHostedConfig) -> Limits:
        settings = Settings(config.timeout, config.failure_threshold, config.circuit_reset, config.health_ttl)
        return cls(settings, config.queue_max_size, config.queue_max_wait)


class Store(Protocol):
    async def lease(self, capability: str, avoid: frozenset[str]) -> Lease:
        """A token on a suitable endpoint, now or after queueing; raises ``NotServable``."""
        ...

    async def finish(
        self, lease: Lease, verdict: Verdict, *, latency_ms: float | None = None, error: str | None = None
    ) -> None:
        """Give the token back (exactly once) with what the attempt said about the endpoint."""
        ...

    async def record_probe(self, endpoint_id: str, url: str, healthy: bool, error: str | None) -> None:
        """A health probe's result; ignored when the endpoint has moved to another URL since."""
        ...

    async def configure(self, endpoints: Sequence[EndpointConfig], limits: Limits | None = None) -> list[str]:
        """Apply the endpoint list (and new limits); returns the ids that need a health probe now."""
        ...

    def log(self, decision: Decision) -> None: ...

    def endpoints(self) -> list[EndpointState]: ...

    def endpoint(self, endpoint_id: str) -> EndpointState | None: ...

    def queue(self) -> QueueView: ...

    @property
    def routing_log(self) -> RoutingLog: ...


class InMemoryStore:
    def __init__(self, limits: Limits, clock: Clock, rng: random.Random) -> None:
        self.clock = clock
        self.settings = limits.settings
        self.fleet = Fleet(limits.settings, clock)
        self.scheduler = Scheduler(
            self.fleet, clock, rng, max_size=limits.queue_max_size, max_wait=limits.queue_max_wait
        )
        self._log = RoutingLog()

    def __repr__(self) -> str:
        return f"<InMemoryStore {self.scheduler!r}>"

    async def lease(self, capability: str, avoid: frozenset[str]) -> Lease:
        return await self.scheduler.lease(capability, avoid)

    async def finish(
        self, lease: Lease, verdict: Verdict, *, latency_ms: float | None = None, error: str | None = None
    ) -> None:
        if lease.done:
            return
        lease.done = True
        endpoint, permit = lease.endpoint, lease.permit
        if verdict is Verdict.SUCCESS:
            endpoint.breaker.on_success(permit)
            if latency_ms is not None:
                endpoint.latency.add(latency_ms)
        elif verdict is Verdict.FAILURE:
            endpoint.breaker.on_failure(permit)
            endpoint.last_error = LastError(error or "request failed", self.clock.wall())
        else:
            endpoint.breaker.release(permit)
        self.fleet.give_back(endpoint)

    async def record_probe(self, endpoint_id: str, url: str, healthy: bool, error: str | None) -> None:
        endpoint = self.fleet.get(endpoint_id)
        if endpoint is None or endpoint.config.url != url:
            return
        endpoint.health = Health.HEALTHY if healthy else Health.UNHEALTHY
        endpoint.probed_at = self.clock.wall()
        endpoint.trusted_until = self.clock.monotonic() + self.settings.health_ttl
        if error is not None:
            endpoint.last_error = LastError(error, endpoint.probed_at)
        self.fleet.refresh(endpoint)

    async def configure(self, endpoints: Sequence[EndpointConfig], limits: Limits | None = None) -> list[str]:
        if limits is not None:
            self.settings = limits.settings
            self.scheduler.max_size, self.scheduler.max_wait = limits.queue_max_size, limits.queue_max_wait
        return [endpoint.id for endpoint in self.fleet.configure(endpoints, self.settings)]

    def log(self, decision: Decision) -> None:
        self._log.add(decision)

    def endpoints(self) -> list[EndpointState]:
        return list(self.fleet)

    def endpoint(self, endpoint_id: str) -> EndpointState | None:
        return self.fleet.get(endpoint_id)

    def queue(self) -> QueueView:
        return self.scheduler.view()

    @property
    def routing_log(self) -> RoutingLog:
        return self._log
