"""The endpoints and what the gateway knows about each at run time, indexed for O(1) choices.

For every capability the fleet keeps two indexes, updated on every event that can change them (a
token taken or returned, a probe result, a circuit opening, a timer firing, an admin change):

    ready     active, healthy, and the circuit permits a request
    room      ready, and fewer than max_concurrency requests in flight

so choosing an endpoint never scans the fleet, however large. Time-based changes (a circuit that
may half-open, a health result that stops being trusted) are timers on the injected clock.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from gateway.clock import Clock, Timer
from gateway.headers import bearer
from gateway.upstream import Target
from plugins.selfhosted.breaker import CircuitBreaker, CircuitState
from plugins.selfhosted.config import CAPABILITIES, EndpointConfig
from plugins.selfhosted.stats import LastError, LatencyStats, Reason

T = TypeVar("T")
# Credentials a client may send for the cloud; none of them is for a self-hosted endpoint.
CLIENT_CREDENTIALS = frozenset({b"authorization", b"cookie", b"api-key", b"x-api-key"})


class Health(enum.Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Settings:
    timeout: float
    failure_threshold: int
    circuit_reset: float
    health_ttl: float


class EndpointState:
    def __init__(self, config: EndpointConfig, settings: Settings, clock: Clock) -> None:
        self.config = config
        self.target = endpoint_target(config, settings.timeout)
        self.in_flight = 0
        self.breaker = CircuitBreaker(settings.failure_threshold, settings.circuit_reset, clock)
        self.health = Health.UNKNOWN
        self.probed_at: float | None = None
        self.trusted_until = -math.inf
        self.latency = LatencyStats()
        self.last_error: LastError | None = None
        self.removed = False
        self.timers: dict[str, tuple[float, Timer]] = {}

    def __repr__(self) -> str:
        load = f"{self.in_flight}/{self.config.max_concurrency}"
        return f"<Endpoint {self.id} [{self.config.status}, {self.health.value}, {load}]>"

    @property
    def id(self) -> str:
        return str(self.config.id)

    def healthy(self, now: float) -> bool:
        return self.health is Health.HEALTHY and now < self.trusted_until

    def ready(self, now: float) -> bool:
        return (
            not self.removed
            and self.config.status == "active"
            and self.healthy(now)
            and self.breaker.permits()
        )

    @property
    def has_room(self) -> bool:
        return self.in_flight < self.config.max_concurrency


def endpoint_target(config: EndpointConfig, timeout: float) -> Target:
    key = config.key
    return Target(
        route=f"selfhosted/{config.id}",
        base_url=config.url,
        # A request never waits long for a pooled connection: the plugin's own queue is where requests wait.
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0), pool=min(timeout, 5.0)),
        drop_headers=CLIENT_CREDENTIALS,
        extra_headers=(bearer(key),) if key else (),
    )


class IndexedSet(Generic[T]):
    """A set with O(1) add, remove and random access by position (for sampling)."""

    def __init__(self) -> None:
        self.items: list[T] = []
        self._position: dict[T, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: T) -> bool:
        return item in self._position

    def put(self, item: T, present: bool) -> None:
        if present and item not in self._position:
            self._position[item] = len(self.items)
            self.items.append(item)
        elif not present and item in self._position:
            index = self._position.pop(item)
            last = self.items.pop()
            if index < len(self.items):
                self.items[index] = last
                self._position[last] = index


class Fleet:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._endpoints: dict[str, EndpointState] = {}
        self._ready = {capability: IndexedSet[EndpointState]() for capability in CAPABILITIES}
        self._room = {capability: IndexedSet[EndpointState]() for capability in CAPABILITIES}
        self.on_room: Callable[[EndpointState], None] = lambda endpoint: None
        """Called when an endpoint can take one more request (the scheduler hands it to a waiter)."""
        self.on_none_ready: Callable[[str], None] = lambda capability: None
        """Called when no endpoint is ready for a capability any more (its waiters must not wait)."""
        self._batch = False

    def __repr__(self) -> str:
        return f"<Fleet {list(self._endpoints.values())}>"

    def __iter__(self) -> Iterator[EndpointState]:
        return iter(list(self._endpoints.values()))

    def __len__(self) -> int:
        return len(self._endpoints)

    def get(self, endpoint_id: str) -> EndpointState | None:
        return self._endpoints.get(endpoint_id)

    def configure(
        self, configs: Sequence[EndpointConfig], settings: Settings | None = None
    ) -> list[EndpointState]:
        """Make the fleet match ``configs``; returns the endpoints that need a probe now.

        An endpoint keeps its state (and its requests in flight) across changes; a new URL makes it
        another server, so its health and circuit start afresh.
        """
        self.settings = settings or self.settings
        wanted = {str(config.id): config for config in configs}
        self._batch = True
        try:
            for endpoint_id in [known for known in self._endpoints if known not in wanted]:
                self._remove(self._endpoints.pop(endpoint_id))
            to_probe = [endpoint for endpoint in map(self._apply, wanted.values()) if endpoint is not None]
        finally:
            self._batch = False
        for capability in CAPABILITIES:
            self._check_ready(capability)
        return to_probe

    def _apply(self, config: EndpointConfig) -> EndpointState | None:
        """Create or update one endpoint; returns it when it needs a probe."""
        current = self._endpoints.get(str(config.id))
        if current is None:
            current = self._endpoints[str(config.id)] = EndpointState(config, self.settings, self.clock)
            self.refresh(current)
            return current
        moved = current.config.url != config.url
        current.config = config
        current.target = endpoint_target(config, self.settings.timeout)
        current.breaker.failure_threshold = self.settings.failure_threshold
        current.breaker.reset_timeout = self.settings.circuit_reset
        if moved:
            current.health, current.trusted_until, current.probed_at = Health.UNKNOWN, -math.inf, None
            current.breaker.reset()
            current.latency = LatencyStats()
        self.refresh(current)
        return current if moved else None

    def refresh(self, endpoint: EndpointState, notify: bool = True) -> None:
        """Recompute the endpoint's place in the indexes after anything about it changed."""
        now = self.clock.monotonic()
        ready = endpoint.ready(now)
        room = ready and endpoint.has_room
        for capability in CAPABILITIES:
            capable = capability in endpoint.config.capabilities
            self._ready[capability].put(endpoint, ready and capable)
            self._room[capability].put(endpoint, room and capable)
            self._check_ready(capability)
        self._schedule(endpoint, now)
        if room and notify:
            self.on_room(endpoint)

    def _check_ready(self, capability: str) -> None:
        if not self._batch and not self._ready[capability]:
            self.on_none_ready(capability)

    def with_room(self, capability: str) -> Sequence[EndpointState]:
        return self._room[capability].items

    def any_ready(self, capability: str) -> bool:
        return len(self._ready[capability]) > 0

    def ready_beyond(self, capability: str, tried: frozenset[str]) -> bool:
        """Is any endpoint ready for ``capability`` that is not in ``tried``? (Retries only.)"""
        return any(endpoint.id not in tried for endpoint in self._ready[capability].items)

    def has_room(self, endpoint: EndpointState, capability: str) -> bool:
        return endpoint in self._room[capability]

    def refusal(self, capability: str) -> Reason:
        """Why no endpoint is ready for ``capability`` (scans the fleet: only on the way to a fallback)."""
        now = self.clock.monotonic()
        capable = [
            endpoint
            for endpoint in self._endpoints.values()
            if endpoint.config.status == "active" and capability in endpoint.config.capabilities
        ]
        if not capable:
            return Reason.NO_CAPABLE_ENDPOINT
        if not any(endpoint.healthy(now) for endpoint in capable):
            return Reason.ALL_UNHEALTHY
        return Reason.CIRCUIT_OPEN

    def take(self, endpoint: EndpointState) -> None:
        endpoint.in_flight += 1
        self.refresh(endpoint, notify=False)

    def give_back(self, endpoint: EndpointState) -> None:
        endpoint.in_flight -= 1
        self.refresh(endpoint)

    def _remove(self, endpoint: EndpointState) -> None:
        endpoint.removed = True
        self.refresh(endpoint, notify=False)
        for _, timer in endpoint.timers.values():
            timer.cancel()
        endpoint.timers.clear()

    def _schedule(self, endpoint: EndpointState, now: float) -> None:
        """Timers for the moments the endpoint's readiness changes by itself."""
        if endpoint.removed:
            return
        reset_at = endpoint.breaker.reset_at if endpoint.breaker.state is CircuitState.OPEN else None
        trusted_until = endpoint.trusted_until if endpoint.healthy(now) else None
        for purpose, due in (("circuit", reset_at), ("health", trusted_until)):
            current = endpoint.timers.get(purpose)
            if current is not None and (due is None or current[0] != due):
                current[1].cancel()
                del endpoint.timers[purpose]
            if due is not None and purpose not in endpoint.timers:
                timer = self.clock.call_later(due - now, functools.partial(self._fire, endpoint))
                endpoint.timers[purpose] = (due, timer)

    def _fire(self, endpoint: EndpointState) -> None:
        now = self.clock.monotonic()
        for purpose, (due, _) in list(endpoint.timers.items()):
            if due <= now:
                del endpoint.timers[purpose]
        self.refresh(endpoint)
