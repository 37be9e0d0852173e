"""A tiny synchronous client for the ``/_fake/`` control routes, for tests and benchmarks.

It uses ``http.client`` with a fresh connection per call, so it never shares a connection pool
with the code under test and never skews the fake's ``open_connections``.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
from typing import Any


class FakeControlError(Exception):
    """A control call answered with a non-200 status (or an unreadable body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class FakeControl:
    """``FakeControl("http://127.0.0.1:9001")``: stats, configure and reset one fake."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<FakeControl http://{self.host}:{self.port}>"

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_fake/stats")

    def configure(self, **fields: Any) -> dict[str, Any]:
        """Change any of latency, response_bytes, fail, health, slow_rate; returns the new config."""
        return self._call("POST", "/_fake/config", fields)

    def reset(self) -> dict[str, Any]:
        """Zero the counters (the config stays); returns the stats after the reset."""
        return self._call("POST", "/_fake/reset")

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 2.0, interval: float = 0.01
    ) -> dict[str, Any]:
        """Poll ``stats()`` until ``predicate`` holds; ``TimeoutError`` with the last stats otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate(stats := self.stats()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s; last stats: {stats}")
            time.sleep(interval)
        return stats

    def _call(self, method: str, path: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            body = None if document is None else json.dumps(document).encode()
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            status, data = response.status, response.read()
        finally:
            connection.close()
        try:
            answer = json.loads(data)
        except ValueError:
            raise FakeControlError(status, data[:200].decode("latin-1")) from None
        if status != 200 or not isinstance(answer, dict):
            raise FakeControlError(status, json.dumps(answer)[:500])
        return answer
