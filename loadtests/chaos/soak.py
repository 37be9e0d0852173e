"""Running the soak: the stack, a warm-up and baseline, the chaos, then settling and checking.

Everything runs on loopback: each simulated upstream and the gateway is its own process, the
clients, the fault scheduler and the operator are tasks of this one. The run is bounded by
``duration`` and ``max_requests``; settling after it by fixed timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.lifespan import KEEPALIVE_EXPIRY
from loadtests.chaos.faults import FaultScheduler
from loadtests.chaos.operator import ADDED, LimitChange, Operator
from loadtests.chaos.traffic import Budget, Clients, Traffic
from loadtests.fakes import FakeControl
from loadtests.processes import ServerProcess, free_port, rss_kib

GPUS = {"gpu-a": 2, "gpu-b": 3, "gpu-c": 4}
"""The three GPUs the faults cycle over, and their max_concurrency (gpu-c's changes during the run)."""
SPARE_CONCURRENCY = 2
GPU_LATENCY = 0.15
CLOUD_LATENCY = 0.05
WARM_UP_REQUESTS = 60
SETTLE_TIMEOUT = 30.0
RECENT = 200_000
"""Requests each simulated endpoint remembers: all of a run, to show what overlapped if one is overloaded."""
ADMISSION_GRACE = 0.05
"""How long after a lowered max_concurrency was answered a request admitted before it may still reach
the endpoint (its bytes were on their way): well above a loopback hop, far below a request's 150 ms."""
ANSWER_ROUTES = ("selfhosted", "cloud", "rejected")
RSS_GROWTH_LIMIT_KIB = 16 * 1024
"""How far above its warmed-up baseline the gateway's resident memory may end: allocator slack,
not a leak, which grows with the number of requests instead."""


@dataclass(frozen=True)
class SoakSettings:
    duration: float = 180.0
    clients: int = 32
    max_requests: int = 100_000
    fault_period: float = 2.0
    operator_period: float = 2.0
    seed: int = 7


@dataclass
class SoakResult:
    settings: SoakSettings
    elapsed: float = 0.0
    traffic: Traffic = field(default_factory=Traffic)
    faults_applied: Counter[str] = field(default_factory=Counter)
    faults_injected: int = 0
    """Requests the GPUs misbehaved on, as they counted them (probes not included)."""
    peaks: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Endpoint id: (peak requests in flight as the endpoint counted them, its max_concurrency)."""
    admin: Counter[str] = field(default_factory=Counter)
    admin_changes: int = 0
    audit_lines: int = 0
    baseline: dict[str, Any] = field(default_factory=dict)
    final: dict[str, Any] = field(default_factory=dict)
    rss_baseline_kib: int = 0
    rss_final_kib: int = 0
    rss_peak_kib: int = 0
    config_valid: bool = False
    lowered_checked: int = 0
    """Requests gpu-c started while its max_concurrency had been lowered, each checked against it."""
    gateway_answers: Counter[str] = field(default_factory=Counter)
    """The image requests the gateway itself says it answered during the run, by route
    (``selfhosted``, ``cloud``, ``rejected``): the plugin's totals, after minus before."""
    problems: list[str] = field(default_factory=list)


@dataclass
class Stack:
    gateway_url: str
    token: str
    config_path: Path
    gateway: ServerProcess
    gpus: dict[str, FakeControl]
    spare: FakeControl
    spare_url: str

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.gateway_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0
        )


async def soak(settings: SoakSettings, folder: Path) -> SoakResult:
    """Run the soak with its processes' logs in ``folder`` (which must exist)."""
    with _stack(folder) as stack:
        return await _run(stack, settings)


async def _run(stack: Stack, settings: SoakSettings) -> SoakResult:
    result = SoakResult(settings)
    admin = stack.admin()
    try:
        await _until(admin, _overview, _all_healthy, "the endpoints never became healthy")
        warm = Clients(stack.gateway_url, clients=8, seed=settings.seed)
        await warm.run(Budget(time.monotonic() + 60, WARM_UP_REQUESTS))
        # Let the warm-up's idle connections expire, so the baseline holds only what stays open.
        await asyncio.sleep(KEEPALIVE_EXPIRY + 2.5)
        result.baseline = await _runtime(admin)
        result.rss_baseline_kib = rss_kib(stack.gateway.pid)
        for control in [*stack.gpus.values(), stack.spare]:
            await asyncio.to_thread(control.reset)

        limits = {**GPUS, ADDED: SPARE_CONCURRENCY}
        clients = Clients(stack.gateway_url, settings.clients, settings.seed)
        faults = FaultScheduler(stack.gpus, period=settings.fault_period, seed=settings.seed)
        operator = Operator(
            stack.gateway_url,
            stack.token,
            stack.config_path,
            spare_url=stack.spare_url,
            limits=limits,
            period=settings.operator_period,
        )
        totals_before = (await _overview(admin))["totals"]
        stop = asyncio.Event()
        started = time.monotonic()
        chaos = [asyncio.create_task(faults.run(stop)), asyncio.create_task(operator.run(stop))]
        try:
            result.traffic = await clients.run(Budget(started + settings.duration, settings.max_requests))
        finally:
            stop.set()
            await asyncio.gather(*chaos)
        result.elapsed = time.monotonic() - started
        result.rss_peak_kib = rss_kib(stack.gateway.pid, "VmHWM")
        result.faults_applied = faults.applied
        result.admin = operator.done
        result.admin_changes = operator.changes
        result.problems += operator.problems

        await _settle(stack, admin, result)
        totals_after = (await _overview(admin))["totals"]
        result.gateway_answers = Counter(
            {route: totals_after[route] - totals_before[route] for route in ANSWER_ROUTES}
        )
        result.rss_final_kib = rss_kib(stack.gateway.pid)
        await _check_endpoints(stack, operator, limits, result)
        result.audit_lines = len((stack.config_path.parent / "audit.log").read_text().splitlines())
        result.config_valid = _config_valid(stack.config_path)
    finally:
        await admin.aclose()
    log = stack.gateway.stderr()
    if "Traceback" in log:
        result.problems.append("the gateway logged an unexpected error:\n" + log[-4000:])
    result.problems += _broken_promises(result)
    return result


async def _settle(stack: Stack, admin: httpx.AsyncClient, result: SoakResult) -> None:
    """Wait for the gateway to come back to rest; what does not within the timeouts is a problem."""
    try:
        await _until(admin, _overview, _idle, "tokens still held or requests still queued")
    except TimeoutError as error:
        result.problems.append(str(error))
    baseline = result.baseline

    def rested(now: dict[str, Any]) -> bool:
        connections = now["upstream_connections"]
        return bool(
            now["tasks"] <= baseline["tasks"]
            and connections["open"] == connections["idle"]
            and connections["open"] <= baseline["upstream_connections"]["open"]
        )

    try:
        result.final = await _until(admin, _runtime, rested, "tasks or connections above the baseline")
    except TimeoutError as error:
        result.final = await _runtime(admin)
        result.problems.append(str(error))


async def _check_endpoints(
    stack: Stack, operator: Operator, limits: dict[str, int], result: SoakResult
) -> None:
    """What each endpoint counted: faults injected, and never more in flight than it was allowed."""
    for name, control in [*stack.gpus.items(), (ADDED, stack.spare)]:
        stats = await asyncio.to_thread(control.stats)
        result.faults_injected += stats["faults_injected"]
        result.peaks[name] = (stats["peak_concurrency"], limits[name])
        if stats["peak_concurrency"] > limits[name]:
            result.problems.append(_overload(name, limits[name], stats["recent"]))
        if name == "gpu-c":
            result.lowered_checked, problem = within_lowered_limit(
                name, stats["recent"], operator.concurrency_changes, GPUS[name]
            )
            if problem is not None:
                result.problems.append(problem)


def within_lowered_limit(
    name: str, recent: list[dict[str, Any]], changes: list[LimitChange], initial: int
) -> tuple[int, str | None]:
    """Check every request ``name`` started while its limit was lowered: counting it, no more than
    the lowered limit were in flight on the endpoint's own clock. A lowering binds requests the
    endpoint received from ``ADMISSION_GRACE`` after the change was answered (one admitted just
    before may still be on its way) until the next raise was asked for. Returns how many were
    checked, and the first breach."""
    windows: list[tuple[float, float, int]] = []
    limit, since = initial, 0.0
    for change in [*changes, LimitChange(float("inf"), float("inf"), initial)]:
        if limit < initial:  # lowered from ``since`` until this change was asked for
            windows.append((since + ADMISSION_GRACE, change.asked, limit))
        limit, since = change.limit, change.answered
    starts = sorted((entry["received_at"], entry.get("ended_at") or float("inf")) for entry in recent)
    checked = 0
    for begin, end, lowered in windows:
        for received_at, _ in starts:
            if not begin <= received_at < end:
                continue
            checked += 1
            in_flight = sum(1 for start, stop in starts if start <= received_at < stop)
            if in_flight > lowered:
                after = received_at - begin + ADMISSION_GRACE
                return checked, (
                    f"{name} started a request with {in_flight} in flight, {after:.3f} s after "
                    f"its max_concurrency was lowered to {lowered}"
                )
    return checked, None


def _overload(name: str, limit: int, recent: list[dict[str, Any]]) -> str:
    """What ``name`` was doing when it had more than ``limit`` requests in flight, from its own log."""
    events = sorted(
        [(entry["received_at"], 1, index) for index, entry in enumerate(recent)]
        + [(entry["ended_at"], -1, index) for index, entry in enumerate(recent) if entry["ended_at"]]
    )
    open_now: set[int] = set()
    for at, step, index in events:
        if step < 0:
            open_now.discard(index)
            continue
        open_now.add(index)
        if len(open_now) > limit:
            overlapping = [
                f"{recent[i]['outcome']} {recent[i]['received_at'] - at:+.4f}s → "
                f"{(recent[i]['ended_at'] or at) - at:+.4f}s"
                for i in sorted(open_now)
            ]
            return f"{name} had {len(open_now)} requests in flight (max_concurrency {limit}): {overlapping}"
    return f"{name} counted more than {limit} requests in flight, outside its recent log"


def _broken_promises(result: SoakResult) -> list[str]:
    traffic = result.traffic
    problems: list[str] = []
    if traffic.sent != traffic.received + traffic.failures:
        problems.append(f"{traffic.sent} requests sent but {traffic.received + traffic.failures} answered")
    # The gateway's own account must match the clients': every image request it saw was answered
    # once, by the route the client was told; motion transfer, never the plugin's, is the rest.
    images = traffic.by_kind["text-to-image"] + traffic.by_kind["image-to-image"]
    answered = result.gateway_answers
    if answered.total() != images:
        problems.append(f"{images} image requests sent, the gateway answered {answered.total()}: {answered}")
    if answered["selfhosted"] != traffic.by_route["selfhosted"]:
        problems.append(
            f"the gateway served {answered['selfhosted']} on its GPUs, clients received "
            f"{traffic.by_route['selfhosted']} from them"
        )
    if answered["cloud"] + traffic.by_kind["motion-transfer"] != traffic.by_route["cloud"]:
        problems.append(
            f"the gateway sent {answered['cloud']} image requests and "
            f"{traffic.by_kind['motion-transfer']} motion transfers to the cloud, clients received "
            f"{traffic.by_route['cloud']} from it"
        )
    if traffic.failures:
        problems.append(f"{traffic.failures} requests failed: {traffic.examples}")
    if result.rss_final_kib - result.rss_baseline_kib > RSS_GROWTH_LIMIT_KIB:
        problems.append(
            f"resident memory ended {result.rss_final_kib - result.rss_baseline_kib} KiB above its baseline"
        )
    if result.audit_lines != result.admin_changes:
        problems.append(f"{result.admin_changes} admin changes but {result.audit_lines} audit lines")
    if not result.config_valid:
        problems.append("gateway.yaml is not valid after the run")
    return problems


# -- the stack ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _stack(folder: Path) -> Iterator[Stack]:
    processes: list[ServerProcess] = []

    def start(argv: list[str], name: str, ready: str) -> ServerProcess:
        process = ServerProcess(argv, folder, name)
        processes.append(process)
        process.wait_ready(ready, timeout=60)
        return process

    def fake(kind: str, name: str, latency: float) -> tuple[str, FakeControl]:
        port, control_port = free_port(), free_port()
        argv = ["-m", "loadtests.fakes", kind, "--port", str(port), "--name", name]
        argv += ["--latency", str(latency), "--control-port", str(control_port), "--recent", str(RECENT)]
        control = f"http://127.0.0.1:{control_port}"
        start(argv, name, f"{control}/_fake/stats")
        return f"http://127.0.0.1:{port}", FakeControl(control)

    try:
        cloud_url, _ = fake("cloud", "cloud", CLOUD_LATENCY)
        gpus = {name: fake("gpu", name, GPU_LATENCY) for name in GPUS}
        spare_url, spare = fake("gpu", ADDED, GPU_LATENCY)
        port, token = free_port(), secrets.token_urlsafe(24)
        config_path = folder / "gateway.yaml"
        config_path.write_text(
            _config(port, token, cloud_url, {name: url for name, (url, _) in gpus.items()})
        )
        (folder / "audit.log").unlink(missing_ok=True)
        url = f"http://127.0.0.1:{port}"
        gateway = start(
            ["-m", "gateway", "serve", "--config", str(config_path)], "gateway", f"{url}/api/v1/health"
        )
        yield Stack(
            url,
            token,
            config_path,
            gateway,
            {name: control for name, (_, control) in gpus.items()},
            spare,
            spare_url,
        )
    finally:
        for process in reversed(processes):
            process.stop()


def _config(port: int, token: str, cloud_url: str, gpu_urls: dict[str, str]) -> str:
    endpoints = "\n".join(
        f"        - id: {name}\n"
        f"          name: {name.upper()}\n"
        f"          url: {url}\n"
        f"          max_concurrency: {GPUS[name]}\n"
        f"          weight: 1"
        for name, url in gpu_urls.items()
    )
    return f"""\
# The soak run's gateway (loadtests.chaos). The operator edits this file while the run goes on.
server:
  host: 127.0.0.1
  port: {port}
cloud:
  base_url: {cloud_url}
  timeout: 30
admin:
  token: {token}
  audit_log: audit.log
  reload_interval: 0.5
telemetry:
  access_log: false
  log_level: warning
plugins:
  - name: selfhosted
    config:
      routing:
        enabled: true
        routing_percentage: 85
      cloud_fallback: true
      timeout: 2              # seconds per attempt: a hanging GPU costs seconds, not minutes
      retries: 2
      health_ttl: 3
      failure_threshold: 3
      circuit_reset: 4
      queue_max_size: 1000
      queue_max_wait: 5
      endpoints:
{endpoints}
"""


def _config_valid(path: Path) -> bool:
    check = subprocess.run(  # noqa: S603 - our own interpreter checking our own file
        [sys.executable, "-m", "gateway", "check", "--config", str(path)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    return check.returncode == 0


# -- reading the gateway -----------------------------------------------------------------------


async def _overview(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/api/v1/admin/selfhosted")
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


async def _runtime(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/api/v1/admin/runtime")
    response.raise_for_status()
    figures: dict[str, Any] = response.json()
    return figures


def _all_healthy(state: dict[str, Any]) -> bool:
    return all(endpoint["health"]["status"] == "healthy" for endpoint in state["endpoints"])


def _idle(state: dict[str, Any]) -> bool:
    return state["queue"]["depth"] == 0 and all(e["current_load"] == 0 for e in state["endpoints"])


async def _until(
    admin: httpx.AsyncClient,
    read: Callable[[httpx.AsyncClient], Any],
    done: Callable[[dict[str, Any]], bool],
    failure: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        value: dict[str, Any] = await read(admin)
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{failure} after {SETTLE_TIMEOUT:.0f} s: {value}")
        await asyncio.sleep(0.2)
