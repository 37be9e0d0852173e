"""What the gateway adds to a request, against the same upstream called directly.

1 KB JSON answers; wrk as the client. Sequential (one connection): added p50/p99 latency and the
gateway's CPU per request. 64 connections against a 100 ms upstream (their first requests spread
over 100 ms, like independent clients): throughput ratio and added p99.
Both through the plain cloud proxy and through the self-hosted plugin (100% routed to one GPU).
Direct and gateway rounds are interleaved; the first round of each is a discarded warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loadtests.bench.harness import Gateway, Upstream, stack
from loadtests.bench.stats import median
from loadtests.bench.wrk import WrkResult, run_wrk

PATH = "/v1/images/generations"
STAGGER_MS = 100
"""The 64 clients start their first requests at random over one upstream latency, as independent
clients would: started in lockstep, every round would open with 64 requests queued at once, whose
tail is an artefact of the load generator that then dominates a round's p99."""


@dataclass
class Comparison:
    name: str
    direct: list[WrkResult] = field(default_factory=list)
    gateway: list[WrkResult] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def added(self, attribute: str) -> float:
        return median([getattr(r, attribute) for r in self.gateway]) - median(
            [getattr(r, attribute) for r in self.direct]
        )

    def median(self, side: str, attribute: str) -> float:
        return median([getattr(r, attribute) for r in getattr(self, side)])

    @property
    def throughput_ratio(self) -> float:
        return self.median("gateway", "throughput") / self.median("direct", "throughput")

    @property
    def cpu_ms_per_request(self) -> float:
        return median(self.cpu_ms)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.direct + self.gateway)


@dataclass
class OverheadResult:
    comparisons: list[Comparison]


def compare(
    name: str,
    upstream: Upstream,
    gateway: Gateway,
    *,
    connections: int,
    seconds: int,
    rounds: int,
    stagger_ms: int = 0,
) -> Comparison:
    result = Comparison(name)
    for round_index in range(rounds + 1):
        direct = run_wrk(upstream.url + PATH, connections, seconds, stagger_ms)
        cpu = gateway.cpu_seconds()
        through = run_wrk(gateway.url + PATH, connections, seconds, stagger_ms)
        cpu_ms = (gateway.cpu_seconds() - cpu) * 1000 / max(through.requests, 1)
        if round_index > 0:  # the first round warms up connection pools and caches
            result.direct.append(direct)
            result.gateway.append(through)
            result.cpu_ms.append(cpu_ms)
    return result


def run(folder: Path, smoke: bool) -> OverheadResult:
    seconds, rounds = (1, 1) if smoke else (3, 4)
    comparisons = []
    with stack(folder, "overhead") as running:
        cloud = running.fake("cloud", "cloud", "--response-bytes", "1024")
        gpu = running.fake("gpu", "gpu", "--response-bytes", "1024")
        proxy = running.gateway({"cloud": {"base_url": cloud.url}}, "gateway-proxy")
        routed = running.gateway(
            {
                "cloud": {"base_url": cloud.url},
                "plugins": [
                    {
                        "name": "selfhosted",
                        "config": {
                            "routing": {"routing_percentage": 100},
                            "endpoints": [
                                {"id": "gpu", "name": "GPU", "url": gpu.url, "max_concurrency": 256}
                            ],
                        },
                    }
                ],
            },
            "gateway-selfhosted",
        )
        for label, upstream, gateway in (("cloud proxy", cloud, proxy), ("self-hosted", gpu, routed)):
            comparisons.append(
                compare(
                    f"{label}, sequential", upstream, gateway, connections=1, seconds=seconds, rounds=rounds
                )
            )
        for upstream in (cloud, gpu):
            upstream.control.configure(latency=0.1)
        for label, upstream, gateway in (("cloud proxy", cloud, proxy), ("self-hosted", gpu, routed)):
            comparisons.append(
                compare(
                    f"{label}, 64 clients, 100 ms upstream",
                    upstream,
                    gateway,
                    connections=64,
                    seconds=seconds + 1,
                    rounds=rounds,
                    stagger_ms=STAGGER_MS,
                )
            )
    return OverheadResult(comparisons)
