"""Counters a fake keeps about the API traffic it has seen, served at ``GET /_fake/stats``."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import time
from typing import Any

from loadtests.fakes.messages import Headers, RequestHead

RECENT_LIMIT = 200
IN_FLIGHT = "in_flight"


@dataclasses.dataclass
class RecentRequest:
    """One API request as received; ``outcome`` stays ``in_flight`` until it is settled."""

    method: str
    path: str
    query: str
    headers: Headers
    body_sha256: str = hashlib.sha256(b"").hexdigest()
    body_bytes: int = 0
    outcome: str = IN_FLIGHT
    status: int | None = None
    received_at: float = 0.0
    """``time.monotonic()`` when the head arrived (the same clock in every process of the machine)."""
    started_at: float | None = None
    """When the work began: after the body, and after waiting for a free slot."""
    finished_at: float | None = None
    ended_at: float | None = None
    """When it stopped counting as in flight: its answer written, or its connection gone."""

    def record_body(self, body: bytes) -> None:
        self.body_sha256 = hashlib.sha256(body).hexdigest()
        self.body_bytes = len(body)

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["headers"] = [list(pair) for pair in self.headers]
        return document


class Stats:
    """API request counters; ``in_flight`` spans head received to response written or connection dead."""

    def __init__(self, recent_limit: int = RECENT_LIMIT) -> None:
        self.requests = 0
        self.health_checks = 0
        self.faults_injected = 0
        self.in_flight = 0
        self.peak_concurrency = 0
        self.by_route: collections.Counter[str] = collections.Counter()
        self.recent: collections.deque[RecentRequest] = collections.deque(maxlen=recent_limit)

    def __repr__(self) -> str:
        return (
            f"<Stats requests={self.requests} in_flight={self.in_flight} "
            f"peak={self.peak_concurrency} faults={self.faults_injected}>"
        )

    def begin(self, head: RequestHead, route: str) -> RecentRequest:
        """Count an API request whose head has just arrived; pair with ``end``."""
        self.requests += 1
        self.by_route[route] += 1
        self.in_flight += 1
        self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        entry = RecentRequest(
            head.method, head.path, head.query, list(head.headers), received_at=time.monotonic()
        )
        self.recent.append(entry)
        return entry

    def end(self, entry: RecentRequest) -> None:
        self.in_flight -= 1
        entry.ended_at = time.monotonic()

    def reset(self) -> None:
        """Zero the counters; ``in_flight`` is a gauge of live requests and so survives."""
        self.requests = self.health_checks = self.faults_injected = 0
        self.peak_concurrency = self.in_flight
        self.by_route.clear()
        self.recent.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "health_checks": self.health_checks,
            "by_route": dict(self.by_route),
            "in_flight": self.in_flight,
            "peak_concurrency": self.peak_concurrency,
            "faults_injected": self.faults_injected,
            "recent": [entry.to_json() for entry in self.recent],
        }
