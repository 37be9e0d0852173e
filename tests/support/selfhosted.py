"""Building selfhosted plugin configs for tests, and reading the plugin's admin overview."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.support.stack import ADMIN_TOKEN, Fake


def endpoint(fake: Fake, endpoint_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": endpoint_id, "name": endpoint_id.upper(), "url": fake.url, **fields}


def gateway_config(
    cloud: Fake, endpoints: list[dict[str, Any]], percentage: float = 100, **settings: Any
) -> dict[str, Any]:
    plugin = {
        "routing": {"enabled": True, "routing_percentage": percentage},
        "endpoints": endpoints,
        **settings,
    }
    return {
        "cloud": {"base_url": cloud.url},
        "admin": {"token": ADMIN_TOKEN},
        "telemetry": {"access_log": False},
        "plugins": [{"name": "selfhosted", "config": plugin}],
    }


def wait_for(
    read: Callable[[], dict[str, Any]], predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not predicate(value := read()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s: {value}")
        time.sleep(0.01)
    return value


def all_healthy(overview: dict[str, Any]) -> bool:
    return all(endpoint["health"]["status"] == "healthy" for endpoint in overview["endpoints"])


def idle(overview: dict[str, Any]) -> bool:
    """No token held and nobody queued: what every burst must end with."""
    return overview["queue"]["depth"] == 0 and all(
        endpoint["current_load"] == 0 for endpoint in overview["endpoints"]
    )


CONFIGURED = ("id", "name", "url", "api_key", "status", "max_concurrency", "capabilities", "weight")


def configured_endpoints(overview: dict[str, Any]) -> list[dict[str, Any]]:
    """Each endpoint as configured, as the overview shows it (no telemetry)."""
    return [{key: entry[key] for key in CONFIGURED} for entry in overview["endpoints"]]


def by_id(overview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {endpoint["id"]: endpoint for endpoint in overview["endpoints"]}
