"""Telemetry the plugin keeps: per-endpoint latency and errors, and the log of routing decisions."""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

EWMA_ALPHA = 0.2
LATENCY_WINDOW = 256
ROUTING_LOG_SIZE = 500


class Reason(enum.Enum):
    """Why a request went where it went; the vocabulary of the routing log and the metrics."""

    ROUTING_DISABLED = "routing_disabled"
    NOT_SELECTED_BY_SPLIT = "not_selected_by_split"
    NO_CAPABLE_ENDPOINT = "no_capable_endpoint"
    ALL_UNHEALTHY = "all_unhealthy"
    CIRCUIT_OPEN = "circuit_open"
    QUEUE_FULL = "queue_full"
    QUEUE_TIMEOUT = "queue_timeout"
    RETRIES_EXHAUSTED = "retries_exhausted"
    SERVED = "served"


class LatencyStats:
    """An EWMA of recent latencies, and the p95 of the last ``LATENCY_WINDOW`` of them."""

    def __init__(self) -> None:
        self.ewma_ms: float | None = None
        self._window: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def __repr__(self) -> str:
        return f"<LatencyStats ewma={self.ewma_ms} samples={len(self._window)}>"

    def add(self, latency_ms: float) -> None:
        self._window.append(latency_ms)
        self.ewma_ms = (
            latency_ms if self.ewma_ms is None else self.ewma_ms + EWMA_ALPHA * (latency_ms - self.ewma_ms)
        )

    def recent(self, count: int) -> list[float]:
        """The last ``count`` latencies, oldest first."""
        return list(self._window)[-count:]

    def p95_ms(self) -> float | None:
        if not self._window:
            return None
        ordered = sorted(self._window)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class LastError:
    message: str
    at: float
    """Unix time."""


@dataclass(frozen=True, slots=True)
class Decision:
    at: float
    request_id: str
    capability: str
    target: str
    """``selfhosted/<endpoint-id>``, ``cloud``, or ``none`` (fallback off)."""
    reason: Reason
    attempts: int
    status: int | None
    latency_ms: float | None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["reason"] = self.reason.value
        if self.latency_ms is not None:
            document["latency_ms"] = round(self.latency_ms, 1)
        return document


class RoutingLog:
    """The last ``ROUTING_LOG_SIZE`` decisions, and totals since start."""

    def __init__(self, size: int = ROUTING_LOG_SIZE) -> None:
        self._recent: deque[Decision] = deque(maxlen=size)
        self.by_target: Counter[str] = Counter()
        self.by_reason: Counter[Reason] = Counter()

    def __repr__(self) -> str:
        return f"<RoutingLog {len(self._recent)} recent, {sum(self.by_reason.values())} in all>"

    def add(self, decision: Decision) -> None:
        self._recent.append(decision)
        self.by_target["selfhosted" if decision.target.startswith("selfhosted/") else decision.target] += 1
        self.by_reason[decision.reason] += 1

    def newest_first(self, limit: int = ROUTING_LOG_SIZE) -> list[Decision]:
        return list(reversed(self._recent))[:limit]
