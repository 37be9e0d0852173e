"""Chaos, end to end: every way a GPU endpoint can fail, and clients that leave at the worst moment.

Each fault is injected by the simulated endpoint itself (``loadtests/fakes``) into a gateway under
uvicorn, and each test asserts the exact outcome the client sees — one complete answer from the cloud,
or with fallback off the documented 503/504 — and that nothing is left behind: no token held, nobody
queued, no upstream connection open, no task running, no request still in flight on the endpoint.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.conftest import StartGateway
from tests.support.selfhosted import by_id, endpoint, idle, wait_for
from tests.support.stack import Fake, GatewayProcess, start_fake
from tests.test_selfhosted_e2e import generate, overview, sdk, start

ATTEMPT_TIMEOUT = 0.5
"""The plugin's per-attempt ``timeout`` here, so that hanging endpoints cost seconds, not minutes."""

FAULTS = {
    # fault: the status a client gets with cloud_fallback off, and what the gateway saw (last_error)
    "refuse": (503, "could not be reached (ConnectError)"),
    "hang": (504, "no answer within 0.5 s"),
    "slow_headers": (504, "no answer within 0.5 s"),
    "reset": (503, "dropped the connection before answering (ReadError)"),
    "500": (503, "answered HTTP 500"),
    "502": (503, "answered HTTP 502"),
    "503": (503, "answered HTTP 503"),
    "504": (503, "answered HTTP 504"),
    "429": (503, "answered HTTP 429"),
    "reset_mid_body": (503, "dropped the connection mid-answer (ReadError)"),
    "truncated_json": (503, "answered HTTP 200 with a malformed JSON body"),
}


@pytest.fixture(scope="module")
def _faulty_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    # A control port of its own, so that "refuse" can close the main port and still be steered.
    fake = start_fake("gpu", tmp_path_factory.mktemp("faulty"), "faulty", control_port=True)
    yield fake
    fake.process.stop()


@pytest.fixture
def faulty(_faulty_process: Fake) -> Fake:
    _faulty_process.restore()
    return _faulty_process


def runtime(gateway: GatewayProcess) -> dict[str, Any]:
    response = gateway.admin().get("/api/v1/admin/runtime")
    response.raise_for_status()
    figures: dict[str, Any] = response.json()
    return figures


def settles(gateway: GatewayProcess, baseline: dict[str, Any]) -> dict[str, Any]:
    """Wait until the gateway holds no more tasks than at ``baseline`` and no upstream connection
    is in use (idle ones kept for reuse are fine); the figures, or TimeoutError with them."""

    def back(now: dict[str, Any]) -> bool:
        connections = now["upstream_connections"]
        return bool(now["tasks"] <= baseline["tasks"] and connections["open"] == connections["idle"])

    return wait_for(lambda: runtime(gateway), back)


def raw_request(gateway: GatewayProcess, body: bytes = b'{"prompt": "x"}') -> socket.socket:
    """A client socket that has sent one generation request and reads nothing yet."""
    host, port = gateway.url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)))
    client.sendall(
        b"POST /v1/images/generations HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    return client


@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "no-fallback"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_ends_in_one_complete_answer_or_the_documented_error(
    gateway_factory: StartGateway, cloud: Fake, faulty: Fake, fault: str, fallback: bool
) -> None:
    gateway = start(
        gateway_factory,
        cloud,
        [endpoint(faulty, "gpu-a")],
        timeout=ATTEMPT_TIMEOUT,
        cloud_fallback=fallback,
    )
    baseline = runtime(gateway)
    if fault == "refuse":  # the health probe's kept-alive connection is gone: every attempt connects anew
        faulty.control.wait_for(lambda stats: stats["open_connections"] == 0, timeout=10)
    faulty.control.configure(fail=fault)
    client = sdk(gateway, max_retries=0)
    if fallback:
        assert generate(client) == "cloud", "one complete answer, from the cloud"
        assert cloud.stats()["requests"] == 1
    else:
        with pytest.raises(openai.APIStatusError) as caught:
            client.images.generate(model="gpt-image-1", prompt="x")
        error = caught.value
        assert error.status_code == FAULTS[fault][0]
        assert error.code == "retries_exhausted"
        assert error.response.headers["x-gateway-route"] == "selfhosted"
        assert error.response.headers["x-should-retry"] == "false"
        assert int(error.response.headers["retry-after"]) >= 1
        assert cloud.stats()["requests"] == 0
    state = wait_for(lambda: overview(gateway), idle)
    decision = state["routing_log"][0]
    assert (decision["reason"], decision["attempts"]) == ("retries_exhausted", 3)
    gpu = by_id(state)["gpu-a"]
    assert gpu["consecutive_failures"] == 3, "the first attempt and both retries failed on gpu-a"
    assert gpu["circuit"]["state"] == "open", "three consecutive failures open the circuit"
    assert FAULTS[fault][1] in gpu["last_error"]["message"]
    faulty.control.wait_for(lambda stats: stats["in_flight"] == 0)
    assert faulty.stats()["requests"] == (0 if fault == "refuse" else 3), "refused before the endpoint"
    settles(gateway, baseline)


def test_a_slow_body_that_keeps_coming_is_waited_for(
    gateway_factory: StartGateway, cloud: Fake, faulty: Fake
) -> None:
    # 60 kB at 40 kB/s: three times the attempt timeout in all, but never long without data.
    faulty.control.configure(fail="slow_body", slow_rate=40_000, response_bytes=60_000)
    gateway = start(gateway_factory, cloud, [endpoint(faulty, "gpu-a")], timeout=ATTEMPT_TIMEOUT)
    response = gateway.client().post("/v1/images/generations", json={"prompt": "slowly"})
    assert response.status_code == 200
    assert response.headers["x-gateway-route"] == "selfhosted/gpu-a"
    assert len(response.content) >= 60_000
    assert response.json()["data"][0]["b64_json"]
    state = wait_for(lambda: overview(gateway), idle)
    assert by_id(state)["gpu-a"]["consecutive_failures"] == 0
    assert cloud.stats()["requests"] == 0


@pytest.mark.parametrize("buffered", [True, False], ids=["whole-answer", "streamed"])
def test_a_client_leaving_mid_answer_gives_everything_back_at_once(
    gateway_factory: StartGateway, cloud: Fake, faulty: Fake, buffered: bool
) -> None:
    # A 2 MB answer dribbled at 100 kB/s: the client leaves long before it could be complete.
    faulty.control.configure(fail="slow_body", slow_rate=100_000, response_bytes=2_000_000)
    gateway = start(
        gateway_factory,
        cloud,
        [endpoint(faulty, "gpu-a", max_concurrency=1)],
        response_buffer_bytes=32 * 2**20 if buffered else 0,
    )
    baseline = runtime(gateway)
    with raw_request(gateway) as client:
        faulty.control.wait_for(lambda stats: stats["in_flight"] == 1)
        if not buffered:  # the head and the first bytes have reached the client
            assert client.recv(65536).startswith(b"HTTP/1.1 200 ")
        else:  # the gateway is receiving the whole answer; the client has seen nothing
            wait_for(lambda: overview(gateway), lambda state: by_id(state)["gpu-a"]["current_load"] == 1)
    left = time.monotonic()
    state = wait_for(lambda: overview(gateway), idle)
    faulty.control.wait_for(lambda stats: stats["in_flight"] == 0 and stats["open_connections"] == 0)
    assert time.monotonic() - left < 2.0, "the token and the GPU connection came back at once"
    assert by_id(state)["gpu-a"]["consecutive_failures"] == 0, "a client leaving is no mark against gpu-a"
    decision = state["routing_log"][0]
    assert (decision["target"], decision["error"]) == ("selfhosted/gpu-a", "client disconnected")
    assert cloud.stats()["requests"] == 0, "nothing was retried for a client that has gone"
    assert faulty.stats()["requests"] == 1, "not on the GPU either"
    settles(gateway, baseline)


@pytest.mark.parametrize("fault", ["slow_body", "hang", "reset_mid_body", "truncated_json", "503"])
def test_a_faulty_endpoint_under_a_queue_never_exceeds_its_max_concurrency(
    gateway_factory: StartGateway, cloud: Fake, faulty: Fake, fault: str
) -> None:
    # One slot and eight clients at once: every freed token goes straight to a waiting request, the
    # moment when an endpoint still busy with the last one would be sent one too many. Four idle
    # connections are kept from a burst before, so the next request need not wait for a new one.
    gateway = start(
        gateway_factory,
        cloud,
        [endpoint(faulty, "gpu-a", max_concurrency=4)],
        timeout=0.5,
        failure_threshold=1000,
    )
    faulty.control.configure(latency=0.5)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(
                lambda _: gateway.client().post("/v1/images/generations", json={"prompt": "x"}), range(4)
            )
        )
    assert faulty.stats()["peak_concurrency"] == 4
    patched = gateway.admin().patch("/api/v1/admin/selfhosted/endpoints/gpu-a", json={"max_concurrency": 1})
    assert patched.status_code == 200
    faulty.control.configure(fail=fault, latency=0, slow_rate=40_000, response_bytes=60_000)
    faulty.control.reset()
    client = sdk(gateway, max_retries=0, timeout=60)
    with ThreadPoolExecutor(max_workers=8) as pool:
        routes = Counter(pool.map(lambda index: generate(client, f"queued {index}"), range(8)))
    assert sum(routes.values()) == 8, "eight complete answers"
    expected = {"selfhosted/gpu-a"} if fault == "slow_body" else {"cloud"}
    assert set(routes) == expected
    stats = faulty.control.wait_for(lambda stats: stats["in_flight"] == 0)
    assert stats["requests"] >= 8
    assert stats["peak_concurrency"] == 1, "as counted by the endpoint itself"
    wait_for(lambda: overview(gateway), idle)
