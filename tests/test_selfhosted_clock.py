"""End to end on a fake clock: queue waits, probes, circuit resets and deadlines, without sleeping.

The gateway runs under uvicorn on a loopback port in this process, so the test can move its clock;
clients and simulated upstreams still talk real HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugins.selfhosted.health import healthy_interval
from plugins.selfhosted.overview import describe
from plugins.selfhosted.plugin import SelfHostedPlugin
from tests.support.inprocess import InProcessGateway
from tests.support.selfhosted import all_healthy, by_id, endpoint, gateway_config, idle, wait_for
from tests.support.stack import Fake


@pytest.fixture
def start(cloud: Fake, tmp_path: Path) -> Iterator[Any]:
    running: list[InProcessGateway] = []

    def start(endpoints: list[dict[str, Any]], **settings: Any) -> InProcessGateway:
        folder = tmp_path / f"gateway-{len(running)}"
        folder.mkdir()
        gateway = InProcessGateway(gateway_config(cloud, endpoints, **settings), folder).__enter__()
        running.append(gateway)
        wait_for(lambda: state(gateway), all_healthy)
        return gateway

    yield start
    for gateway in running:
        gateway.__exit__(None, None, None)


def state(gateway: InProcessGateway) -> dict[str, Any]:
    plugin = gateway.plugin("selfhosted")
    assert isinstance(plugin, SelfHostedPlugin)
    return gateway.call(lambda: describe(plugin))


def post(gateway: InProcessGateway, **headers: str) -> httpx.Response:
    with gateway.client() as client:
        return client.post("/v1/images/generations", json={"prompt": "x"}, headers=headers)


def test_a_request_waiting_longer_than_queue_max_wait_falls_back(
    start: Any, cloud: Fake, gpus: list[Fake]
) -> None:
    gateway = start(
        [endpoint(gpus[0], "gpu-a", max_concurrency=1)], queue_max_wait=30, retries=0, health_ttl=1000
    )
    gpus[0].control.configure(fail="hang")
    with ThreadPoolExecutor(max_workers=2) as pool:
        hanging = pool.submit(post, gateway)
        wait_for(lambda: state(gateway), lambda s: by_id(s)["gpu-a"]["current_load"] == 1)
        queued = pool.submit(post, gateway)
        wait_for(lambda: state(gateway), lambda s: s["queue"]["depth"] == 1)
        gateway.advance(29)
        assert not queued.done()
        gateway.advance(1)
        response = queued.result(timeout=10)
        assert response.status_code == 200
        assert response.headers["x-gateway-route"] == "cloud"
        assert state(gateway)["routing_log"][0]["reason"] == "queue_timeout"
        gateway.advance(60)  # the hanging attempt reaches its 90 s deadline and falls back too
        assert hanging.result(timeout=10).headers["x-gateway-route"] == "cloud"
    gpus[0].control.wait_for(lambda stats: stats["in_flight"] == 0)
    wait_for(lambda: state(gateway), idle)


def test_an_endpoint_is_skipped_after_its_probe_fails_and_back_after_one_succeeds(
    start: Any, gpus: list[Fake]
) -> None:
    gateway = start([endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")], health_ttl=30)
    gpus[0].control.configure(health="unhealthy")
    gateway.advance(healthy_interval(30))  # the next probe is due
    wait_for(lambda: state(gateway), lambda s: by_id(s)["gpu-a"]["health"]["status"] == "unhealthy")
    assert {post(gateway).headers["x-gateway-route"] for _ in range(10)} == {"selfhosted/gpu-b"}
    assert gpus[0].stats()["requests"] == 0
    gpus[0].control.configure(health="ok")
    gateway.advance(5)  # unhealthy endpoints are probed again every few seconds
    wait_for(lambda: state(gateway), all_healthy)
    routes = {post(gateway).headers["x-gateway-route"] for _ in range(10)}
    assert routes == {"selfhosted/gpu-a", "selfhosted/gpu-b"}


def test_flapping_health_never_fails_a_client(start: Any, gpus: list[Fake]) -> None:
    gateway = start([endpoint(gpus[0], "gpu-a")], health_ttl=30)
    gpus[0].control.configure(health="flap")  # probes from now on: healthy, unhealthy, healthy, ...
    # A healthy result is probed again after healthy_interval, an unhealthy one after 5 s.
    steps = [(healthy_interval(30), "healthy")] + [(healthy_interval(30), "unhealthy"), (5.0, "healthy")] * 2
    phases = []
    for probes, (wait, status) in enumerate(steps, start=2):
        gateway.advance(wait)
        gpus[0].control.wait_for(probed(probes))
        wait_for(lambda: state(gateway), health_is("gpu-a", status))
        responses = [post(gateway) for _ in range(5)]
        assert all(response.status_code == 200 and response.json()["data"] for response in responses)
        phases.append({response.headers["x-gateway-route"] for response in responses})
    gpu_a, cloud = {"selfhosted/gpu-a"}, {"cloud"}
    assert phases == [gpu_a, cloud, gpu_a, cloud, gpu_a], "out while unhealthy, back after one good probe"
    final = state(gateway)
    assert by_id(final)["gpu-a"]["consecutive_failures"] == 0, "a failed probe is no request failure"
    assert final["totals"]["by_reason"]["all_unhealthy"] == 10


def probed(count: int) -> Callable[[dict[str, Any]], bool]:
    return lambda stats: bool(stats["health_checks"] == count)


def health_is(endpoint_id: str, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda overview: bool(by_id(overview)[endpoint_id]["health"]["status"] == status)


def test_after_the_reset_exactly_one_request_is_the_half_open_trial(start: Any, gpus: list[Fake]) -> None:
    gpus[0].control.configure(fail="503")
    gateway = start(
        [
            endpoint(gpus[0], "gpu-a", weight=100, max_concurrency=20),
            endpoint(gpus[1], "gpu-b", max_concurrency=20),
        ],
        health_ttl=1000,
    )
    for _ in range(3):
        assert post(gateway).headers["x-gateway-route"] == "selfhosted/gpu-b"
    assert by_id(state(gateway))["gpu-a"]["circuit"]["state"] == "open"
    gpus[0].control.reset()
    # The trial takes 4 s (real time) to fail, so the other 19 arrive while it is still in flight.
    gpus[0].control.configure(latency=4)
    before = gpus[1].stats()["requests"]
    gateway.advance(300)
    assert by_id(state(gateway))["gpu-a"]["circuit"]["state"] == "half_open"
    with ThreadPoolExecutor(max_workers=20) as pool:
        pending = [pool.submit(lambda: post(gateway).headers["x-gateway-route"]) for _ in range(20)]
        gpus[1].control.wait_for(lambda stats: stats["requests"] - before == 19, timeout=3)
        assert gpus[0].stats()["in_flight"] == 1, "the other 19 were routed while the trial was running"
        routes = [future.result() for future in pending]
    assert gpus[0].stats()["requests"] == 1, "exactly one trial reached the endpoint"
    assert routes == ["selfhosted/gpu-b"] * 20, "the failed trial was retried on gpu-b"
    after = by_id(state(gateway))["gpu-a"]["circuit"]
    assert after["state"] == "open", "the trial failed: open for another reset"

    gpus[0].control.configure(fail="none", latency=0)
    gpus[0].control.reset()
    gateway.advance(300)
    assert post(gateway).headers["x-gateway-route"] == "selfhosted/gpu-a", (
        "the trial goes to the half-open endpoint"
    )
    assert by_id(state(gateway))["gpu-a"]["circuit"]["state"] == "closed"
    wait_for(lambda: state(gateway), idle)


def test_with_fallback_off_a_timeout_answers_504(start: Any, gpus: list[Fake]) -> None:
    gateway = start([endpoint(gpus[0], "gpu-a")], cloud_fallback=False, retries=0, timeout=90)
    gpus[0].control.configure(fail="hang")
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(post, gateway)
        wait_for(lambda: state(gateway), lambda s: by_id(s)["gpu-a"]["current_load"] == 1)
        gateway.advance(90)
        response = pending.result(timeout=10)
    assert response.status_code == 504
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["retry-after"]
    assert response.json()["error"]["code"] == "retries_exhausted"
    assert by_id(state(gateway))["gpu-a"]["last_error"]["message"] == "no answer within 90 s"
    gpus[0].control.wait_for(lambda stats: stats["in_flight"] == 0)
    wait_for(lambda: state(gateway), idle)


def test_a_hanging_probe_never_delays_a_request(start: Any, gpus: list[Fake]) -> None:
    gateway = start([endpoint(gpus[0], "gpu-a", weight=100), endpoint(gpus[1], "gpu-b")], health_ttl=30)
    plugin = gateway.plugin("selfhosted")
    assert isinstance(plugin, SelfHostedPlugin)
    gpus[0].control.configure(health="hang")
    gateway.advance(healthy_interval(30))  # gpu-a's next probe starts, and hangs
    gpus[0].control.wait_for(lambda stats: stats["health_checks"] == 2)
    assert post(gateway).headers["x-gateway-route"] == "selfhosted/gpu-a", "its last result is still trusted"
    gateway.advance(30 - healthy_interval(30))  # that result expires; the probe still hangs
    assert post(gateway).headers["x-gateway-route"] == "selfhosted/gpu-b"
    assert "gpu-a" in gateway.call(lambda: repr(plugin.running.health)), "both answered while the probe hung"
    assert by_id(state(gateway))["gpu-a"]["health"]["status"] == "unknown"
