"""Running wrk (a C load generator, so the client is never the bottleneck) and reading its numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from loadtests.bench.harness import HELPER_CPU

SCRIPT = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is needed: `make bench` installs it (apt-get install wrk)")
    return found


def run_wrk(url: str, connections: int, seconds: int, stagger_ms: int = 0) -> WrkResult:
    """POST a small image request to ``url`` over ``connections`` keep-alive connections, their first
    requests spread at random over ``stagger_ms`` (independent clients, not a lockstep start)."""
    command = [
        "taskset",
        "-c",
        HELPER_CPU,
        wrk_path(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(connections),
        str(stagger_ms),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout  # noqa: S603
    line = next(line for line in output.splitlines() if line.startswith("JSON "))
    data = json.loads(line.removeprefix("JSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        errors=data["errors"],
    )
