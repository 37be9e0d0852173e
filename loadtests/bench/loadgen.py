"""An open-loop load generator: requests leave at a fixed rate whatever the answers take, as
independent clients would send them (a closed loop would slow down with the system it measures)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

BODY = {"model": "gpt-image-1", "prompt": "a lighthouse at dawn"}


@dataclass(frozen=True)
class Outcome:
    sent_at: float
    latency: float
    status: int
    route: str


@dataclass(frozen=True)
class LoadResult:
    outcomes: list[Outcome]
    client_cpu_seconds: float

    def share(self, predicate: str) -> float:
        return sum(1 for outcome in self.outcomes if outcome.route.startswith(predicate)) / max(
            len(self.outcomes), 1
        )

    @property
    def errors(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status != 200)


async def _one(client: httpx.AsyncClient, url: str, results: list[Outcome]) -> None:
    start = time.monotonic()
    try:
        response = await client.post(url, json=BODY)
        results.append(
            Outcome(
                start,
                time.monotonic() - start,
                response.status_code,
                response.headers.get("x-gateway-route", ""),
            )
        )
    except httpx.HTTPError as error:
        results.append(Outcome(start, time.monotonic() - start, 0, type(error).__name__))


async def _open_loop(url: str, rate: float, seconds: float) -> list[Outcome]:
    results: list[Outcome] = []
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(limits=limits, timeout=600) as client:
        tasks = []
        begin = time.monotonic()
        for index in range(int(rate * seconds)):
            delay = begin + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(client, url, results)))
        await asyncio.gather(*tasks)
    return results


def open_loop(url: str, rate: float, seconds: float) -> LoadResult:
    """Send ``rate`` requests per second to ``url`` for ``seconds``; wait for every answer."""
    cpu = time.process_time()
    outcomes = asyncio.run(_open_loop(url, rate, seconds))
    return LoadResult(outcomes, time.process_time() - cpu)
