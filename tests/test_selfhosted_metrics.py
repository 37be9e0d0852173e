"""plugins/selfhosted/metrics.py: OpenTelemetry metrics for decisions, queue, load and circuits."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from gateway.clock import FakeClock
from plugins.selfhosted.config import EndpointConfig
from plugins.selfhosted.fleet import Settings
from plugins.selfhosted.metrics import PluginMetrics
from plugins.selfhosted.scheduler import Verdict
from plugins.selfhosted.stats import Decision, Reason
from plugins.selfhosted.store import InMemoryStore, Limits

pytestmark = pytest.mark.anyio


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = list(metric.data.data_points)
    return found


def decision(target: str, reason: Reason, latency_ms: float | None = None) -> Decision:
    return Decision(0.0, "rid", "text-to-image", target, reason, 1, 200, latency_ms)


async def test_metrics_cover_decisions_queue_load_and_circuits() -> None:
    clock = FakeClock()
    store = InMemoryStore(Limits(Settings(90, 3, 300, 30), 5, 30), clock, random.Random(0))
    await store.configure([EndpointConfig(id="a", name="a", url="http://a.test")])
    await store.record_probe("a", "http://a.test", True, None)
    reader = InMemoryMetricReader()
    metrics = PluginMetrics(MeterProvider(metric_readers=[reader]), store)

    metrics.record(decision("selfhosted/a", Reason.SERVED, latency_ms=95_000))
    metrics.record(decision("cloud", Reason.NOT_SELECTED_BY_SPLIT))
    metrics.record(decision("cloud", Reason.NOT_SELECTED_BY_SPLIT))
    lease = await store.lease("text-to-image", frozenset())
    for _ in range(2):
        await store.finish(await store.lease("text-to-image", frozenset()), Verdict.FAILURE)
    await store.finish(lease, Verdict.FAILURE)

    found = points(reader)
    requests = {
        (p.attributes["target"], p.attributes["reason"]): p.value for p in found["selfhosted.requests"]
    }
    assert requests == {("selfhosted", "served"): 1, ("cloud", "not_selected_by_split"): 2}
    (duration,) = found["selfhosted.request.duration"]
    assert max(duration.explicit_bounds) > 90, "buckets reach past the 90 s timeout"
    assert duration.bucket_counts[list(duration.explicit_bounds).index(120)] == 1
    assert [p.value for p in found["selfhosted.queue.depth"]] == [0]
    assert [(p.attributes["endpoint"], p.value) for p in found["selfhosted.endpoint.in_flight"]] == [("a", 0)]
    assert [(p.attributes["endpoint"], p.value) for p in found["selfhosted.endpoint.circuit"]] == [("a", 2)]
