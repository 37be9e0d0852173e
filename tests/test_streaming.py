"""End to end: bodies stream through the gateway in both directions, and a hang-up closes upstream."""

from __future__ import annotations

import hashlib
import os
import socket

from loadtests.processes import reset_peak_rss, rss_kib
from tests.support.stack import Fake, GatewayProcess

MiB = 1024 * 1024
# "Well under the body size": the gateway may hold a few chunks and its own bookkeeping, not the body.
MEMORY_BOUND_KIB = 10 * 1024


def warm_up(gateway: GatewayProcess) -> None:
    client = gateway.client()
    for _ in range(20):
        client.get("/bytes/65536").raise_for_status()
        client.post("/echo", content=os.urandom(65536)).raise_for_status()


def test_a_50_mb_response_streams_through_with_bounded_memory(gateway: GatewayProcess, cloud: Fake) -> None:
    warm_up(gateway)
    reset_peak_rss(gateway.pid)
    before = rss_kib(gateway.pid)
    received = 0
    with gateway.client().stream(
        "POST",
        "/v1/images/generations",
        json={"prompt": "big"},
        headers={"x-fake-response-bytes": str(50 * MiB)},
    ) as response:
        assert response.status_code == 200
        declared = int(response.headers["content-length"])
        for chunk in response.iter_raw():
            received += len(chunk)
    growth = rss_kib(gateway.pid, "VmHWM") - before
    assert received == declared == 50 * MiB
    assert growth < MEMORY_BOUND_KIB, f"the gateway grew by {growth} KiB while streaming 50 MiB"


def test_a_40_mb_upload_streams_through_with_bounded_memory(gateway: GatewayProcess, cloud: Fake) -> None:
    warm_up(gateway)
    payload = os.urandom(MiB) * 40
    reset_peak_rss(gateway.pid)
    before = rss_kib(gateway.pid)
    response = gateway.client().post("/echo/upload", content=payload)
    growth = rss_kib(gateway.pid, "VmHWM") - before
    assert response.json()["body_bytes"] == len(payload)
    assert response.json()["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert growth < MEMORY_BOUND_KIB, f"the gateway grew by {growth} KiB while uploading 40 MiB"


def test_client_hanging_up_mid_body_closes_the_upstream_at_once(gateway: GatewayProcess, cloud: Fake) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /bytes/104857600 HTTP/1.1\r\nHost: gw\r\nx-fake-fail: slow_body\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        cloud.control.wait_for(lambda stats: stats["in_flight"] == 1)
    # At 64 KiB/s the upstream would need 1600 s to finish: only the gateway closing it ends it now.
    cloud.control.wait_for(lambda stats: stats["open_connections"] == 0 and stats["in_flight"] == 0)


def test_client_hanging_up_while_waiting_for_the_head_closes_the_upstream(
    gateway: GatewayProcess, cloud: Fake
) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/images/generations HTTP/1.1\r\nHost: gw\r\nContent-Length: 15\r\n"
            b'x-fake-latency: 30\r\n\r\n{"prompt": "x"}'
        )
        cloud.control.wait_for(lambda stats: stats["in_flight"] == 1)
    stats = cloud.control.wait_for(lambda stats: stats["open_connections"] == 0 and stats["in_flight"] == 0)
    assert stats["recent"][-1]["outcome"] == "client_closed"
