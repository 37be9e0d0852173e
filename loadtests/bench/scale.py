"""Whether the gateway's cost per request stays flat as its queue and its fleet grow.

CPU per text-to-image request (wrk, 16 connections) while 10, then 5,000 image-to-image requests wait
in the queue for a GPU that never answers; and with 3, then 1,000 configured endpoints.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from loadtests.bench.harness import Gateway, Upstream, stack
from loadtests.bench.stats import median
from loadtests.bench.wrk import run_wrk

PATH = "/v1/images/generations"


@dataclass(frozen=True)
class ScaleResult:
    queue_small: int
    queue_large: int
    cpu_ms_queue_small: float
    cpu_ms_queue_large: float
    endpoints_small: int
    endpoints_large: int
    cpu_ms_endpoints_small: float
    cpu_ms_endpoints_large: float


def wait_healthy(gateway: Gateway) -> None:
    deadline = time.monotonic() + 120
    while not all(e["health"]["status"] == "healthy" for e in gateway.overview()["endpoints"]):
        if time.monotonic() > deadline:
            raise RuntimeError("the endpoints did not all become healthy")
        time.sleep(0.2)


def cpu_ms_per_request(gateway: Gateway, seconds: int, rounds: int) -> float:
    wait_healthy(gateway)
    samples = []
    for round_index in range(rounds + 1):
        cpu = gateway.cpu_seconds()
        result = run_wrk(gateway.url + PATH, 16, seconds)
        if round_index > 0:
            samples.append((gateway.cpu_seconds() - cpu) * 1000 / max(result.requests, 1))
    return median(samples)


class Parked:
    """``count`` requests held waiting in the gateway's queue (an event loop of their own in a thread)."""

    def __init__(self, url: str, count: int) -> None:
        self.url, self.count = url, count
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tasks: list[asyncio.Task[Any]] = []

    def __enter__(self) -> Parked:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._park(), self.loop).result(60)
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._release(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _park(self) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        self.client = httpx.AsyncClient(limits=limits, timeout=3600)
        for _ in range(self.count):
            self.tasks.append(asyncio.create_task(self.client.post(self.url, json={"prompt": "wait"})))

    async def _release(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.aclose()


def queue_depth(gateway: Gateway, depth: int, seconds: int, rounds: int) -> float:
    with Parked(gateway.url + "/v1/images/edits", depth + 1):  # one holds the parked GPU's only token
        deadline = time.monotonic() + 60
        while gateway.overview()["queue"]["depth"] < depth:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not queue {depth} requests")
            time.sleep(0.1)
        return cpu_ms_per_request(gateway, seconds, rounds)


def selfhosted(cloud: Upstream, endpoints: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    plugin = {"routing": {"routing_percentage": 100}, "health_ttl": 3600, "endpoints": endpoints, **settings}
    return {"cloud": {"base_url": cloud.url}, "plugins": [{"name": "selfhosted", "config": plugin}]}


def run(folder: Path, smoke: bool) -> ScaleResult:
    seconds, rounds = (1, 1) if smoke else (3, 3)
    small_queue, large_queue = 10, (100 if smoke else 5000)
    small_fleet, large_fleet = 3, (30 if smoke else 1000)
    with stack(folder, "scale") as running:
        cloud = running.fake("cloud", "cloud")
        fast = running.fake("gpu", "fast", "--response-bytes", "1024")
        stuck = running.fake("gpu", "stuck", "--fail", "hang")
        parked = [
            {
                "id": "stuck",
                "name": "stuck",
                "url": stuck.url,
                "max_concurrency": 1,
                "capabilities": ["image-to-image"],
            },
            {
                "id": "fast",
                "name": "fast",
                "url": fast.url,
                "max_concurrency": 64,
                "capabilities": ["text-to-image"],
            },
        ]
        queued = running.gateway(
            selfhosted(cloud, parked, queue_max_size=20000, queue_max_wait=3600), "gateway-queue"
        )
        cpu_small_queue = queue_depth(queued, small_queue, seconds, rounds)
        cpu_large_queue = queue_depth(queued, large_queue, seconds, rounds)

        def fleet(size: int) -> list[dict[str, Any]]:
            return [
                {"id": f"gpu-{i}", "name": f"GPU {i}", "url": fast.url, "max_concurrency": 64}
                for i in range(size)
            ]

        few = running.gateway(selfhosted(cloud, fleet(small_fleet)), "gateway-few")
        cpu_few = cpu_ms_per_request(few, seconds, rounds)
        many = running.gateway(selfhosted(cloud, fleet(large_fleet)), "gateway-many")
        cpu_many = cpu_ms_per_request(many, seconds, rounds)
    return ScaleResult(
        small_queue,
        large_queue,
        cpu_small_queue,
        cpu_large_queue,
        small_fleet,
        large_fleet,
        cpu_few,
        cpu_many,
    )
