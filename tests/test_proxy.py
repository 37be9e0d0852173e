"""End to end: the transparent proxy to the cloud (gateway under uvicorn, simulated cloud, real HTTP)."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from loadtests.processes import free_port
from tests.conftest import StartGateway
from tests.support.stack import Fake, GatewayProcess


def echoed_headers(response: httpx.Response) -> dict[str, str]:
    return dict(response.json()["headers"])


def raw_request(gateway: GatewayProcess, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes or answers fully."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_method_path_query_and_body_arrive_unchanged(gateway: GatewayProcess, cloud: Fake) -> None:
    body = b'{"prompt": "a lighthouse", "n": 1}'
    response = gateway.client().request("PUT", "/echo/a%2Fb/c?x=%20y&x=2&empty=", content=body)
    assert response.status_code == 200
    seen = response.json()
    assert (seen["method"], seen["path"], seen["query"]) == ("PUT", "/echo/a%2Fb/c", "x=%20y&x=2&empty=")
    assert seen["body_bytes"] == len(body)
    assert response.headers["x-gateway-route"] == "cloud"


def test_hop_by_hop_headers_never_reach_the_upstream(gateway: GatewayProcess, cloud: Fake) -> None:
    response = gateway.client().get(
        "/echo",
        headers={
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "per-connection",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Trailer": "X-Checksum",
            "Proxy-Authorization": "Basic cHJveHk6cHc=",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "forged",
            "X-Custom": "kept",
        },
    )
    seen = echoed_headers(response)
    for name in (
        "connection",
        "x-hop",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "transfer-encoding",
    ):
        assert name not in seen, name
    assert seen["host"] == cloud.url.removeprefix("http://"), "Host is the upstream's own"
    assert seen["x-forwarded-host"] == gateway.url.removeprefix("http://")
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-custom"] == "kept"
    assert seen["x-request-id"] == response.headers["x-request-id"]


def test_hop_by_hop_headers_never_reach_the_client(gateway: GatewayProcess) -> None:
    hop = [
        ["Connection", "X-Upstream-Hop"],
        ["X-Upstream-Hop", "1"],
        ["Keep-Alive", "timeout=5"],
        ["Proxy-Authenticate", "Basic"],
        ["Trailer", "X-Checksum"],
        ["Upgrade", "h2c"],
        ["X-Request-Id", "req_upstream_1"],
        ["X-End-To-End", "kept"],
    ]
    response = gateway.client().get("/echo", headers={"x-fake-set-headers": json.dumps(hop)})
    assert response.status_code == 200
    for name in ("x-upstream-hop", "keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert name not in response.headers, name
    assert response.headers.get("connection") in (None, "keep-alive")
    assert response.headers["x-end-to-end"] == "kept"
    assert response.headers["x-upstream-request-id"] == "req_upstream_1"
    assert response.headers["x-request-id"] != "req_upstream_1"
    assert len(response.headers.get_list("date")) == 1


def test_client_authorization_passes_through_without_a_cloud_key(gateway: GatewayProcess) -> None:
    response = gateway.client().get("/echo", headers={"Authorization": "Bearer sk-client-own"})
    assert echoed_headers(response)["authorization"] == "Bearer sk-client-own"


def test_cloud_api_key_replaces_the_clients(gateway_factory: StartGateway, cloud: Fake) -> None:
    gateway = gateway_factory(
        {"cloud": {"base_url": cloud.url, "api_key": "${CLOUD_KEY}"}}, env={"CLOUD_KEY": "sk-gateway-owned"}
    )
    response = gateway.client().get("/echo", headers={"Authorization": "Bearer sk-client-own"})
    assert [value for name, value in response.json()["headers"] if name == "authorization"] == [
        "Bearer sk-gateway-owned"
    ]


def test_request_id_is_the_clients_or_a_new_one(gateway: GatewayProcess) -> None:
    client = gateway.client()
    mine = client.get("/echo", headers={"X-Request-Id": "client-req-42"})
    assert mine.headers["x-request-id"] == "client-req-42"
    assert echoed_headers(mine)["x-request-id"] == "client-req-42"
    fresh = client.get("/echo")
    assert len(fresh.headers["x-request-id"]) == 32
    unsafe = client.get("/echo", headers={"X-Request-Id": "has spaces\tand tabs"})
    assert unsafe.headers["x-request-id"] != "has spaces\tand tabs"
    assert len(unsafe.headers["x-request-id"]) == 32


def test_upstream_errors_pass_through_untouched(gateway: GatewayProcess, cloud: Fake) -> None:
    response = gateway.client().post(
        "/v1/images/generations", json={"prompt": "x"}, headers={"x-fake-fail": "429"}
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["type"]
    assert response.headers["x-gateway-route"] == "cloud"


def test_both_content_length_and_transfer_encoding_get_400(gateway: GatewayProcess, cloud: Fake) -> None:
    answer = raw_request(
        gateway,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert cloud.stats()["requests"] == 0


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_declared_oversized_body_gets_413_before_any_upstream_call(
    gateway_factory: StartGateway, cloud: Fake
) -> None:
    gateway = gateway_factory({"cloud": {"base_url": cloud.url}, "limits": {"max_body_bytes": "64KiB"}})
    response = gateway.client().post("/echo", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert error_of(response)["type"] == "invalid_request_error"
    assert response.headers["x-request-id"]
    assert cloud.stats()["requests"] == 0


def test_streamed_oversized_body_gets_413_before_any_upstream_call(
    gateway_factory: StartGateway, cloud: Fake
) -> None:
    gateway = gateway_factory({"cloud": {"base_url": cloud.url}, "limits": {"max_body_bytes": "64KiB"}})

    def chunks() -> Any:
        for _ in range(20):
            yield b"y" * 4096  # 80 KiB in all, no Content-Length: sent chunked

    response = gateway.client().post("/echo", content=chunks())
    assert response.status_code == 413
    assert cloud.stats()["requests"] == 0
    small = gateway.client().post("/echo", content=iter([b"a" * 1000, b"b" * 1000]))
    assert small.json()["body_bytes"] == 2000, "a chunked body within the limit is forwarded whole"


def test_unreachable_cloud_gets_502_with_the_json_error(gateway_factory: StartGateway) -> None:
    gateway = gateway_factory({"cloud": {"base_url": f"http://127.0.0.1:{free_port()}"}})
    response = gateway.client().post("/v1/images/generations", json={"prompt": "x"})
    assert response.status_code == 502
    assert error_of(response)["type"] == "upstream_error"
    assert response.headers["x-gateway-route"] == "cloud"


def test_cloud_timeout_gets_504_with_the_json_error(gateway_factory: StartGateway, cloud: Fake) -> None:
    gateway = gateway_factory({"cloud": {"base_url": cloud.url, "timeout": 0.3}})
    response = gateway.client().post(
        "/v1/images/generations", json={"prompt": "x"}, headers={"x-fake-fail": "hang"}
    )
    assert response.status_code == 504
    assert error_of(response)["type"] == "upstream_timeout"
    cloud.control.wait_for(lambda stats: stats["open_connections"] == 0 and stats["in_flight"] == 0)


def test_upstream_dying_mid_body_aborts_the_client_connection(gateway: GatewayProcess, cloud: Fake) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        gateway.client().post(
            "/v1/images/generations",
            json={"prompt": "x"},
            headers={"x-fake-fail": "reset_mid_body", "x-fake-response-bytes": "200000"},
        )


def test_gateway_owned_paths_are_json_and_never_proxied(gateway: GatewayProcess, cloud: Fake) -> None:
    client = gateway.client()
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert error_of(missing)["type"] == "not_found_error"
    wrong_method = client.delete("/api/v1/health")
    assert wrong_method.status_code == 405
    assert cloud.stats()["requests"] == 0
