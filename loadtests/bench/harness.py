"""Processes a benchmark runs: simulated upstreams, the gateway (pinned to one core), baselines.

Also the measurements read off the gateway's process: CPU time (``/proc/<pid>/task/*/schedstat``,
nanoseconds, every thread) and memory (``VmRSS``, ``VmHWM`` after ``clear_refs``).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtests.fakes import FakeControl
from loadtests.processes import ServerProcess, free_port, reset_peak_rss, rss_kib

GATEWAY_CPU = "0"
HELPER_CPU = "1"


@dataclass
class Upstream:
    url: str
    control: FakeControl
    process: ServerProcess


@dataclass
class Gateway:
    url: str
    process: ServerProcess
    token: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def overview(self) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/api/v1/admin/selfhosted",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document


@dataclass
class Stack:
    """Everything one scenario started; ``close`` stops all of it."""

    folder: Path
    processes: list[ServerProcess] = field(default_factory=list)

    def fake(self, kind: str, name: str, *options: str) -> Upstream:
        port = free_port()
        argv = [
            "-m",
            "loadtests.fakes",
            kind,
            "--port",
            str(port),
            "--name",
            name,
            "--recent",
            "20000",
            *options,
        ]
        process = self._start(argv, name, HELPER_CPU, f"http://127.0.0.1:{port}/_fake/stats")
        url = f"http://127.0.0.1:{port}"
        return Upstream(url, FakeControl(url), process)

    def gateway(self, config: dict[str, Any], name: str = "gateway") -> Gateway:
        port = free_port()
        token = secrets.token_urlsafe(24)
        document = {
            "server": {"host": "127.0.0.1", "port": port},
            "admin": {"token": token, "audit_log": None},
            "telemetry": {"access_log": False, "log_level": "warning"},
            **config,
        }
        path = self.folder / f"{name}.yaml"
        path.write_text(json.dumps(document, indent=2))
        argv = ["-m", "gateway", "serve", "--config", str(path)]
        process = self._start(argv, name, GATEWAY_CPU, f"http://127.0.0.1:{port}/api/v1/health")
        return Gateway(f"http://127.0.0.1:{port}", process, token)

    def baseline(self, policy: str, upstreams: Sequence[str]) -> Gateway:
        port = free_port()
        argv = ["-m", "loadtests.bench.baseline", "--policy", policy, "--port", str(port), *upstreams]
        process = self._start(argv, f"baseline-{policy}", GATEWAY_CPU, f"http://127.0.0.1:{port}/ready")
        return Gateway(f"http://127.0.0.1:{port}", process, "")

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def _start(self, argv: list[str], name: str, cpus: str, ready: str) -> ServerProcess:
        process = ServerProcess(argv, self.folder, name, cpus=cpus)
        self.processes.append(process)
        process.wait_ready(ready, timeout=60)
        return process


@contextlib.contextmanager
def stack(folder: Path, name: str) -> Iterator[Stack]:
    place = folder / name
    place.mkdir(parents=True, exist_ok=True)
    running = Stack(place)
    try:
        yield running
    finally:
        running.close()


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, from schedstat (nanosecond resolution)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def peak_rss_growth_kib(pid: int, action: Any) -> tuple[int, Any]:
    """Run ``action()``; return how far the peak RSS of ``pid`` rose above its RSS before, and the result."""
    reset_peak_rss(pid)
    before = rss_kib(pid)
    result = action()
    return rss_kib(pid, "VmHWM") - before, result
