"""The gateway's memory while it streams large answers, and its time to first byte.

Peak RSS growth (``VmHWM`` after ``clear_refs``) for one 50 MB answer, ten concurrent 20 MB answers,
and a 50 MB answer to a client reading 1 MB/s, whose upstream must be paused, not buffered: the
simulated cloud's own clock shows how long it took to send that answer.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from loadtests.bench.harness import peak_rss_growth_kib, stack

MB = 1_000_000
PATH = "/v1/images/generations"


@dataclass(frozen=True)
class StreamingResult:
    one_large_kib: int
    ten_concurrent_kib: int
    slow_client_kib: int
    slow_client_seconds: float
    upstream_send_seconds: float
    ttfb_direct_ms: float
    ttfb_gateway_ms: float
    sizes: tuple[int, int, int]


def download(url: str, size: int, rate: float | None = None) -> float:
    """Fetch an answer of ``size`` bytes, reading at ``rate`` bytes/s if given; the time to first byte."""
    started = time.monotonic()
    first = None
    received = 0
    with httpx.stream(
        "POST", url + PATH, json={"prompt": "big"}, headers={"x-fake-response-bytes": str(size)}, timeout=600
    ) as response:
        response.raise_for_status()
        for chunk in response.iter_raw(65536):
            first = first or time.monotonic()
            received += len(chunk)
            if rate:
                ahead = received / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    if received != size:
        raise RuntimeError(f"received {received} of {size} bytes")
    return ((first or time.monotonic()) - started) * 1000


def run(folder: Path, smoke: bool) -> StreamingResult:
    large, concurrent, slow = (5 * MB, 2 * MB, 3 * MB) if smoke else (50 * MB, 20 * MB, 50 * MB)
    with stack(folder, "streaming") as running:
        cloud = running.fake("cloud", "cloud")
        gateway = running.gateway({"cloud": {"base_url": cloud.url}})
        for _ in range(5):
            download(gateway.url, 1 * MB)
        one, _ = peak_rss_growth_kib(gateway.pid, lambda: download(gateway.url, large))
        with ThreadPoolExecutor(max_workers=10) as pool:
            ten, _ = peak_rss_growth_kib(
                gateway.pid, lambda: list(pool.map(lambda _: download(gateway.url, concurrent), range(10)))
            )
        began = time.monotonic()
        paced, _ = peak_rss_growth_kib(gateway.pid, lambda: download(gateway.url, slow, rate=1 * MB))
        paced_seconds = time.monotonic() - began
        sent = cloud.control.stats()["recent"][-1]
        ttfb_direct = statistics.median(download(cloud.url, large) for _ in range(3))
        ttfb_gateway = statistics.median(download(gateway.url, large) for _ in range(3))
    return StreamingResult(
        one_large_kib=one,
        ten_concurrent_kib=ten,
        slow_client_kib=paced,
        slow_client_seconds=paced_seconds,
        upstream_send_seconds=sent["finished_at"] - sent["started_at"],
        ttfb_direct_ms=ttfb_direct,
        ttfb_gateway_ms=ttfb_gateway,
        sizes=(large, concurrent, slow),
    )
