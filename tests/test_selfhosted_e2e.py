"""End to end: the selfhosted plugin in a gateway under uvicorn, simulated GPUs and cloud, the openai SDK.

Tests where time matters (circuit reset, queue wait, attempt deadline) live in
test_selfhosted_clock.py, on a fake clock.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import StartGateway
from tests.support.png import b64_png_size
from tests.support.selfhosted import all_healthy, by_id, endpoint, gateway_config, idle, wait_for
from tests.support.stack import Fake, GatewayProcess, start_fake


def start(
    gateway_factory: StartGateway, cloud: Fake, endpoints: list[dict[str, Any]], **settings: Any
) -> GatewayProcess:
    gateway = gateway_factory(gateway_config(cloud, endpoints, **settings))
    wait_for(lambda: overview(gateway), all_healthy)
    return gateway


def overview(gateway: GatewayProcess) -> dict[str, Any]:
    response = gateway.admin().get("/api/v1/admin/selfhosted")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def sdk(gateway: GatewayProcess, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-client-key", **kwargs)


def generate(client: openai.OpenAI, prompt: str = "a lighthouse at dawn") -> str:
    raw = client.images.with_raw_response.generate(model="gpt-image-1", prompt=prompt)
    image = raw.parse().data
    assert image is not None
    assert image[0].b64_json is not None
    assert b64_png_size(image[0].b64_json) == (64, 64)
    return raw.headers["x-gateway-route"]


@pytest.mark.parametrize(("percentage", "expected"), [(0, 0), (25, 100), (100, 400)])
def test_the_split_is_exact(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake], percentage: float, expected: int
) -> None:
    gateway = start(
        gateway_factory,
        cloud,
        [endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")],
        percentage=percentage,
    )
    client = sdk(gateway)
    routes = Counter(generate(client).split("/")[0] for _ in range(400))
    assert routes["selfhosted"] == expected
    assert routes["cloud"] == 400 - expected
    assert gpus[0].stats()["requests"] + gpus[1].stats()["requests"] == expected
    assert cloud.stats()["requests"] == 400 - expected
    state = wait_for(lambda: overview(gateway), idle)
    assert state["totals"]["by_reason"]["not_selected_by_split"] == 400 - expected
    assert state["totals"]["by_reason"]["served"] == expected


def test_motion_transfer_never_touches_a_gpu(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gateway = start(gateway_factory, cloud, [endpoint(gpus[0], "gpu-a")])
    client = gateway.client()
    for _ in range(20):
        response = client.post("/v1/videos/motion-transfer", json={"video": "v.mp4", "image": "i.png"})
        assert response.status_code == 200
        assert response.headers["x-gateway-route"] == "cloud"
    assert gpus[0].stats()["requests"] == 0
    assert overview(gateway)["routing_log"] == [], "not eligible: not a routing decision"


def test_a_burst_never_exceeds_max_concurrency(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    for fake in gpus[:2]:
        fake.control.configure(latency=0.2)
    gateway = start(
        gateway_factory,
        cloud,
        [endpoint(gpus[0], "gpu-a", max_concurrency=2), endpoint(gpus[1], "gpu-b", max_concurrency=3)],
    )
    client = sdk(gateway, timeout=60)
    with ThreadPoolExecutor(max_workers=30) as pool:
        routes = list(pool.map(lambda index: generate(client, f"burst {index}"), range(30)))
    assert all(route.startswith("selfhosted/") for route in routes), "the queue absorbs the burst"
    assert gpus[0].stats()["peak_concurrency"] == 2
    assert gpus[1].stats()["peak_concurrency"] == 3
    assert gpus[0].stats()["requests"] + gpus[1].stats()["requests"] == 30
    wait_for(lambda: overview(gateway), idle)


def test_the_queue_hands_a_freed_token_over(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gpus[0].control.configure(latency=0.15)
    gateway = start(gateway_factory, cloud, [endpoint(gpus[0], "gpu-a", max_concurrency=1)])
    client = sdk(gateway, timeout=30)
    with ThreadPoolExecutor(max_workers=5) as pool:
        routes = list(pool.map(lambda index: generate(client, f"queued {index}"), range(5)))
    assert routes == ["selfhosted/gpu-a"] * 5
    assert gpus[0].stats()["peak_concurrency"] == 1
    assert cloud.stats()["requests"] == 0
    wait_for(lambda: overview(gateway), idle)


def test_a_failing_endpoint_is_skipped_after_the_threshold(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gpus[0].control.configure(fail="503")
    gateway = start(
        gateway_factory, cloud, [endpoint(gpus[0], "gpu-a", weight=100), endpoint(gpus[1], "gpu-b", weight=1)]
    )
    client = sdk(gateway)
    routes = [generate(client, f"request {index}") for index in range(10)]
    assert routes == ["selfhosted/gpu-b"] * 10, "every failure on gpu-a was retried on gpu-b"
    assert gpus[0].stats()["requests"] == 3, "after 3 failures the circuit is open: no 4th call"
    state = by_id(overview(gateway))["gpu-a"]
    assert state["circuit"]["state"] == "open"
    assert state["consecutive_failures"] == 3
    assert state["last_error"]["message"] == "answered HTTP 503"
    assert state["circuit"]["reset_at"] == pytest.approx(state["circuit"]["opened_at"] + 300)


def test_retries_resend_identical_bytes(gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]) -> None:
    gpus[0].control.configure(fail="500")
    gateway = start(
        gateway_factory, cloud, [endpoint(gpus[0], "gpu-a", weight=100), endpoint(gpus[1], "gpu-b", weight=1)]
    )
    body = json.dumps({"model": "gpt-image-1", "prompt": "byte for byte"}).encode()
    response = gateway.client().post(
        "/v1/images/generations", content=body, headers={"content-type": "application/json"}
    )
    assert response.headers["x-gateway-route"] == "selfhosted/gpu-b"
    first, retry = gpus[0].stats()["recent"][-1], gpus[1].stats()["recent"][-1]
    assert first["body_sha256"] == retry["body_sha256"] == hashlib.sha256(body).hexdigest()

    source = sdk(gateway).images.generate(model="gpt-image-1", prompt="source").data
    assert source is not None
    assert source[0].b64_json is not None
    png = base64.b64decode(source[0].b64_json)
    gpus[0].control.configure(fail="none")
    gateway_edit = start(
        gateway_factory, cloud, [endpoint(gpus[2], "gpu-c", weight=100), endpoint(gpus[1], "gpu-b", weight=1)]
    )
    gpus[2].control.configure(fail="502")
    edited = sdk(gateway_edit).images.with_raw_response.edit(
        model="gpt-image-1",
        image=("in.png", io.BytesIO(png), "image/png"),
        mask=("m.png", io.BytesIO(png), "image/png"),
        prompt="hat",
    )
    assert edited.headers["x-gateway-route"] == "selfhosted/gpu-b"
    first, retry = gpus[2].stats()["recent"][-1], gpus[1].stats()["recent"][-1]
    assert first["path"] == retry["path"] == "/v1/images/edits"
    assert first["body_sha256"] == retry["body_sha256"], "the multipart body is resent byte for byte"
    assert first["body_bytes"] > 2 * len(png)


@pytest.mark.parametrize("fault", ["reset_mid_body", "truncated_json"])
def test_an_answer_cut_short_or_malformed_is_a_failure_retried_elsewhere(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake], fault: str
) -> None:
    gpus[0].control.configure(fail=fault, response_bytes=200_000)
    # gpu-a's weight makes it the first choice until its circuit opens after three failures.
    gateway = start(
        gateway_factory, cloud, [endpoint(gpus[0], "gpu-a", weight=100), endpoint(gpus[1], "gpu-b")]
    )
    routes = Counter(generate(sdk(gateway, max_retries=0)) for _ in range(4))
    assert routes == Counter({"selfhosted/gpu-b": 4}), "every client got gpu-b's whole answer"
    state = wait_for(lambda: overview(gateway), idle)
    gpu = by_id(state)["gpu-a"]
    assert gpu["consecutive_failures"] == 3
    assert gpu["circuit"]["state"] == "open"
    assert gpus[0].stats()["requests"] == 3, "the fourth request made no call to gpu-a"
    expected = "dropped the connection mid-answer" if fault == "reset_mid_body" else "malformed JSON body"
    assert expected in gpu["last_error"]["message"]
    assert cloud.stats()["requests"] == 0


def test_an_endpoint_dying_mid_stream_aborts_the_client(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gpus[0].control.configure(fail="reset_mid_body", response_bytes=200_000)
    # An answer larger than response_buffer_bytes is streamed as it arrives: once its head has gone
    # to the client, a failure can only abort the connection.
    gateway = start(gateway_factory, cloud, [endpoint(gpus[0], "gpu-a")], response_buffer_bytes=50_000)
    with pytest.raises(httpx.RemoteProtocolError):
        gateway.client().post("/v1/images/generations", json={"prompt": "half an image"})
    state = wait_for(lambda: overview(gateway), idle)
    gpu = by_id(state)["gpu-a"]
    assert gpu["consecutive_failures"] == 1
    assert gpu["last_error"]["message"] == "connection lost mid-body"
    assert state["routing_log"][0]["error"] == "connection lost mid-body"
    assert cloud.stats()["requests"] == 0, "nothing is retried after the first byte"


@pytest.mark.parametrize("status", [400, 422])
def test_the_requests_own_client_error_passes_back_untouched(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake], status: int
) -> None:
    gpus[0].control.configure(fail=str(status))
    gateway = start(
        gateway_factory, cloud, [endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")], percentage=100
    )
    direct = httpx.post(f"{gpus[0].url}/v1/images/generations", json={"prompt": "x"})
    gpus[0].control.reset()
    gpus[1].control.configure(fail=str(status))
    response = gateway.client().post("/v1/images/generations", json={"prompt": "x"})
    assert response.status_code == status
    assert response.content == direct.content
    assert response.headers["content-type"] == direct.headers["content-type"]
    assert gpus[0].stats()["requests"] + gpus[1].stats()["requests"] == 1, "not retried"
    assert cloud.stats()["requests"] == 0
    assert all(state["consecutive_failures"] == 0 for state in overview(gateway)["endpoints"])


def test_client_credentials_never_reach_a_gpu(
    gateway_factory: StartGateway, cloud: Fake, tmp_path: Any
) -> None:
    gpu = start_fake("gpu", tmp_path, "keyed-gpu", "--api-key", "gpu-own-key")
    try:
        gateway = start(gateway_factory, cloud, [endpoint(gpu, "keyed", api_key="gpu-own-key")])
        response = gateway.client().post(
            "/v1/images/generations",
            json={"prompt": "x"},
            headers={
                "Authorization": "Bearer sk-client",
                "Cookie": "session=abc",
                "api-key": "k1",
                "x-api-key": "k2",
            },
        )
        assert response.status_code == 200
        assert response.headers["x-gateway-route"] == "selfhosted/keyed"
        seen = dict(gpu.stats()["recent"][-1]["headers"])
        assert seen["authorization"] == "Bearer gpu-own-key"
        for name in ("cookie", "api-key", "x-api-key"):
            assert name not in seen
        assert overview(gateway)["endpoints"][0]["api_key"] == "********"
    finally:
        gpu.process.stop()


def test_retries_exhausted_fall_back_to_the_cloud(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gpus[0].control.configure(fail="500")
    gateway = start(gateway_factory, cloud, [endpoint(gpus[0], "gpu-a")], retries=2, failure_threshold=5)
    assert generate(sdk(gateway)) == "cloud"
    assert gpus[0].stats()["requests"] == 3, "the first attempt and two retries"
    decision = overview(gateway)["routing_log"][0]
    assert (decision["reason"], decision["target"], decision["attempts"]) == ("retries_exhausted", "cloud", 3)


def test_fallback_off_answers_503_that_the_sdk_does_not_retry(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gateway = start(
        gateway_factory, cloud, [endpoint(gpus[0], "gpu-a", status="disabled")], cloud_fallback=False
    )
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(gateway).images.generate(model="gpt-image-1", prompt="x")
    error = caught.value
    assert error.status_code == 503
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["x-should-retry"] == "false"
    assert error.code == "no_capable_endpoint"
    state = overview(gateway)
    assert state["totals"]["rejected"] == 1, "the SDK made exactly one request"
    assert cloud.stats()["requests"] == 0


def test_clients_hanging_up_while_waiting_give_everything_back(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gateway = start(gateway_factory, cloud, [endpoint(gpus[0], "gpu-a", max_concurrency=1)])
    gpus[0].control.configure(fail="hang")
    host, port = gateway.url.removeprefix("http://").split(":")
    request = (
        b"POST /v1/images/generations HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b'Content-Length: 15\r\n\r\n{"prompt": "x"}'
    )
    with socket.create_connection((host, int(port))) as waiting_for_head:
        waiting_for_head.sendall(request)
        wait_for(lambda: overview(gateway), lambda state: by_id(state)["gpu-a"]["current_load"] == 1)
        with socket.create_connection((host, int(port))) as queued:
            queued.sendall(request)
            wait_for(lambda: overview(gateway), lambda state: state["queue"]["depth"] == 1)
        # The queued client has gone; the one waiting for the head is still there, holding the token.
        state = wait_for(lambda: overview(gateway), lambda state: state["queue"]["depth"] == 0)
        assert by_id(state)["gpu-a"]["current_load"] == 1
        assert gpus[0].stats()["in_flight"] == 1
    state = wait_for(lambda: overview(gateway), idle)
    gpus[0].control.wait_for(lambda stats: stats["in_flight"] == 0 and stats["open_connections"] == 0)
    assert gpus[0].stats()["requests"] == 1, "the request that left the queue never reached the GPU"
    assert by_id(state)["gpu-a"]["consecutive_failures"] == 0, (
        "a client leaving is no mark against the endpoint"
    )
    assert cloud.stats()["requests"] == 0


class Redirecting(http.server.BaseHTTPRequestHandler):
    """A GPU endpoint that answers every request with a redirect (to somewhere a key must not go)."""

    target = ""

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 302)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(307)
        self.send_header("Location", self.target + "/v1/images/generations")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_redirects_from_an_endpoint_are_never_followed(gateway_factory: StartGateway, cloud: Fake) -> None:
    Redirecting.target = cloud.url
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        gateway = start(
            gateway_factory, cloud, [{"id": "redirecting", "name": "R", "url": url, "api_key": "gpu-key"}]
        )
        response = gateway.client().post("/v1/images/generations", json={"prompt": "x"})
        assert response.status_code == 307
        assert response.headers["location"] == f"{cloud.url}/v1/images/generations"
        assert response.headers["x-gateway-route"] == "selfhosted/redirecting"
        assert cloud.stats()["requests"] == 0, (
            "the gateway did not follow the redirect (nor send the key there)"
        )
    finally:
        server.shutdown()
        server.server_close()
