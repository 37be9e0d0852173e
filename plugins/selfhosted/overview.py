"""The admin overview: routing, settings, queue, totals, every endpoint's telemetry, the routing log.

Keys are never shown: an endpoint with a key shows ``api_key: "********"``. Times are Unix seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.clock import Clock
from plugins.selfhosted.changes import MASK
from plugins.selfhosted.fleet import EndpointState, Health
from plugins.selfhosted.stats import Reason

if TYPE_CHECKING:
    from plugins.selfhosted.plugin import SelfHostedPlugin

DEFAULT_LOG_LIMIT = 100
MAX_LOG_LIMIT = 500
LATENCY_HISTORY = 40


def describe(plugin: SelfHostedPlugin, log_limit: int = DEFAULT_LOG_LIMIT) -> dict[str, Any]:
    running = plugin.running
    clock = running.context.clock
    queue = running.store.queue()
    log = running.store.routing_log
    config = plugin.config
    settings = running.context.settings
    error = settings.error
    return {
        "now": clock.wall(),
        "routing": {"enabled": plugin.routing_enabled, "routing_percentage": plugin.split.percentage},
        "settings": {
            "cloud_fallback": config.cloud_fallback,
            "timeout": config.timeout,
            "retries": config.retries,
            "response_buffer_bytes": config.response_buffer_bytes,
            "health_path": config.health_path,
            "health_ttl": config.health_ttl,
            "failure_threshold": config.failure_threshold,
            "circuit_reset": config.circuit_reset,
            "queue_max_size": config.queue_max_size,
            "queue_max_wait": config.queue_max_wait,
            "allowed_networks": None
            if config.allowed_networks is None
            else [str(n) for n in config.allowed_networks],
        },
        "queue": {
            "depth": queue.depth,
            "oldest_wait_ms": None if queue.oldest_wait is None else round(queue.oldest_wait * 1000, 1),
        },
        "totals": {
            "selfhosted": log.by_target["selfhosted"],
            "cloud": log.by_target["cloud"],
            "rejected": log.by_target["none"],
            "by_reason": {reason.value: log.by_reason[reason] for reason in Reason},
        },
        "config_error": None
        if error is None
        else {"problems": [{"path": p.path, "message": p.message} for p in error.problems]},
        "restart_required": settings.restart_required,
        "endpoints": [describe_endpoint(endpoint, clock) for endpoint in running.store.endpoints()],
        "routing_log": [decision.as_json() for decision in log.newest_first(log_limit)],
    }


def describe_endpoint(endpoint: EndpointState, clock: Clock) -> dict[str, Any]:
    config, breaker = endpoint.config, endpoint.breaker
    now = clock.monotonic()
    health = (
        endpoint.health if endpoint.healthy(now) or endpoint.health is not Health.HEALTHY else Health.UNKNOWN
    )
    p95 = endpoint.latency.p95_ms()
    last_error = endpoint.last_error
    return {
        "id": endpoint.id,
        "name": config.name,
        "url": config.url,
        "api_key": MASK if config.api_key else None,
        "status": config.status,
        "max_concurrency": config.max_concurrency,
        "capabilities": list(config.capabilities),
        "weight": config.weight,
        "health": {"status": health.value, "checked_at": endpoint.probed_at},
        "last_error": None if last_error is None else {"message": last_error.message, "at": last_error.at},
        "current_load": endpoint.in_flight,
        "avg_latency_ms": None if endpoint.latency.ewma_ms is None else round(endpoint.latency.ewma_ms, 1),
        "p95_latency_ms": None if p95 is None else round(p95, 1),
        "latency_history_ms": [round(value, 1) for value in endpoint.latency.recent(LATENCY_HISTORY)],
        "consecutive_failures": breaker.consecutive_failures,
        "circuit": {
            "state": breaker.state.value,
            "opened_at": _wall(clock, breaker.opened_at),
            "reset_at": _wall(clock, breaker.reset_at),
        },
    }


def parse_log_limit(text: str | None) -> int:
    if text is None or not text.isdigit():
        return DEFAULT_LOG_LIMIT
    return min(int(text), MAX_LOG_LIMIT)


def _wall(clock: Clock, monotonic: float | None) -> float | None:
    return None if monotonic is None else clock.wall() - (clock.monotonic() - monotonic)
