"""How busy the gateway keeps a GPU fleet under twice its capacity, against plain proxies.

3 simulated GPUs x 2 slots, 200 ms of work each: an ideal of 30 completions per second. Clients
offer 60 per second (open loop). Measured on the GPUs' own clocks: completions in the window (a
request straddling an edge counts for its share inside it) against the ideal (slots over each GPU's
own measured service time), the idle gap between a slot freeing and its next request starting (p99),
each GPU's peak concurrency; on the client side, the share that overflowed to the cloud and the
failures seen. Then again with one GPU answering 500s.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.bench.harness import Gateway, Stack, Upstream, stack
from loadtests.bench.loadgen import LoadResult, open_loop
from loadtests.bench.stats import percentile

SLOTS = 2
SERVICE = 0.2
GPUS = 3
RATE = 2 * GPUS * SLOTS / SERVICE
QUEUE_WAIT = 2.0


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    failing: bool
    utilisation: float
    gap_p99_ms: float
    peaks: list[int]
    overflow_share: float
    error_share: float
    latency_p50: float
    latency_p99: float
    completions: float
    ideal: float


Builder = Callable[[Stack, list[Upstream], Upstream], Gateway]


def gateway_router(running: Stack, gpus: list[Upstream], cloud: Upstream) -> Gateway:
    endpoints = [
        {"id": f"gpu-{i}", "name": f"GPU {i}", "url": gpu.url, "max_concurrency": SLOTS}
        for i, gpu in enumerate(gpus)
    ]
    plugin = {"routing": {"routing_percentage": 100}, "queue_max_wait": QUEUE_WAIT, "endpoints": endpoints}
    return running.gateway(
        {"cloud": {"base_url": cloud.url}, "plugins": [{"name": "selfhosted", "config": plugin}]}
    )


def plain_proxy(policy: str) -> Builder:
    def build(running: Stack, gpus: list[Upstream], cloud: Upstream) -> Gateway:
        return running.baseline(policy, [gpu.url for gpu in gpus])

    return build


POLICIES: dict[str, Builder] = {
    "gateway (selfhosted)": gateway_router,
    "random choice (LiteLLM default)": plain_proxy("random"),
    "round robin (plain proxy)": plain_proxy("round_robin"),
}


def measure(
    running: Stack, gpus: list[Upstream], cloud: Upstream, policy: str, *, failing: bool, window: float
) -> PolicyResult:
    for gpu in gpus:
        gpu.control.configure(fail="none")
        gpu.control.reset()
    cloud.control.reset()
    if failing:
        gpus[-1].control.configure(fail="500")
    router = POLICIES[policy](running, gpus, cloud)
    try:
        begin = time.monotonic()
        load = open_loop(router.url + "/v1/images/generations", RATE, window)
        stats = [gpu.control.stats() for gpu in gpus]
    finally:
        router.process.stop()
    return summarise(
        policy, load, stats, failing=failing, start=begin + min(3.0, window / 5), end=begin + window
    )


def summarise(
    policy: str, load: LoadResult, stats: list[dict[str, Any]], *, failing: bool, start: float, end: float
) -> PolicyResult:
    working = stats[:-1] if failing else stats
    served = [
        entry for gpu in working for entry in gpu["recent"] if entry["status"] == 200 and entry["finished_at"]
    ]
    # A request straddling an edge of the window counts for the share of its work done inside it,
    # so the figure does not jump by a whole request per slot with where the window happens to fall.
    completions = sum(
        max(0.0, min(entry["finished_at"], end) - max(entry["started_at"], start))
        / (entry["finished_at"] - entry["started_at"])
        for entry in served
    )
    # The ideal is the GPUs' own pace: slots over the service time each GPU measured for itself (the
    # simulated 200 ms comes out a little longer: timer granularity and writing the answer).
    ideal = sum(SLOTS / service_time(gpu) for gpu in working) * (end - start)
    ok = [outcome.latency for outcome in load.outcomes if outcome.status == 200]
    return PolicyResult(
        policy=policy,
        failing=failing,
        utilisation=completions / ideal,
        gap_p99_ms=percentile(gaps(working, start, end), 0.99) * 1000,
        peaks=[gpu["peak_concurrency"] for gpu in stats],
        overflow_share=load.share("cloud"),
        error_share=load.errors / max(len(load.outcomes), 1),
        latency_p50=percentile(ok, 0.5),
        latency_p99=percentile(ok, 0.99),
        completions=completions,
        ideal=ideal,
    )


def service_time(gpu: dict[str, Any]) -> float:
    """Mean seconds from a GPU starting a request to it having sent the answer, on its own clock."""
    times = [
        entry["finished_at"] - entry["started_at"]
        for entry in gpu["recent"]
        if entry["status"] == 200 and entry["started_at"] and entry["finished_at"]
    ]
    return sum(times) / len(times) if times else SERVICE


def gaps(gpus: list[dict[str, Any]], start: float, end: float) -> list[float]:
    """For every slot freed in the window, the time until that GPU started its next request."""
    found: list[float] = []
    for gpu in gpus:
        entries = [entry for entry in gpu["recent"] if entry["started_at"] and entry["finished_at"]]
        starts = sorted(entry["started_at"] for entry in entries)
        for finished in sorted(entry["finished_at"] for entry in entries):
            if start <= finished < end:
                index = bisect.bisect_right(starts, finished)
                if index < len(starts) and starts[index] < end:
                    found.append(starts[index] - finished)
    return found


def run(folder: Path, smoke: bool) -> list[PolicyResult]:
    window = 2.0 if smoke else 15.0
    with stack(folder, "utilisation") as running:
        gpus = [
            running.fake("gpu", f"gpu-{i}", "--slots", str(SLOTS), "--latency", str(SERVICE))
            for i in range(GPUS)
        ]
        cloud = running.fake("cloud", "cloud", "--latency", str(SERVICE))
        return [
            measure(running, gpus, cloud, policy, failing=failing, window=window)
            for failing in (False, True)
            for policy in POLICIES
        ]
