"""OpenTelemetry metrics of the self-hosted plugin.

selfhosted.requests           counter    by target (selfhosted|cloud|none) and reason
selfhosted.request.duration   histogram  seconds, buckets reaching past the 90 s timeout
selfhosted.queue.depth        gauge      requests waiting for a token
selfhosted.endpoint.in_flight gauge      per endpoint
selfhosted.endpoint.circuit   gauge      per endpoint: 0 closed, 1 half-open, 2 open
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from plugins.selfhosted.breaker import CircuitState
from plugins.selfhosted.stats import Decision
from plugins.selfhosted.store import Store

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
CIRCUIT_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class PluginMetrics:
    def __init__(self, provider: MeterProvider, store: Store) -> None:
        meter = provider.get_meter("influgen-gateway.selfhosted")
        self._store = store
        self._requests = meter.create_counter(
            "selfhosted.requests", description="Eligible requests by where they went"
        )
        self._duration = meter.create_histogram(
            "selfhosted.request.duration",
            unit="s",
            description="Time to the response head of requests served by self-hosted endpoints",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        meter.create_observable_gauge(
            "selfhosted.queue.depth", [self._queue_depth], description="Requests waiting for a token"
        )
        meter.create_observable_gauge(
            "selfhosted.endpoint.in_flight", [self._in_flight], description="Requests in flight"
        )
        meter.create_observable_gauge(
            "selfhosted.endpoint.circuit",
            [self._circuit],
            description="Circuit state: 0 closed, 1 half-open, 2 open",
        )

    def record(self, decision: Decision) -> None:
        target = decision.target.split("/", 1)[0]
        self._requests.add(1, {"target": target, "reason": decision.reason.value})
        if decision.latency_ms is not None and target == "selfhosted":
            self._duration.record(decision.latency_ms / 1000, {"endpoint": decision.target.split("/", 1)[1]})

    def _queue_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._store.queue().depth)]

    def _in_flight(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(endpoint.in_flight, {"endpoint": endpoint.id}) for endpoint in self._store.endpoints()
        ]

    def _circuit(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(CIRCUIT_VALUES[endpoint.breaker.state], {"endpoint": endpoint.id})
            for endpoint in self._store.endpoints()
        ]
