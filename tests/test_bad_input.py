"""Bad input from clients: every malformed, oversized or hostile request gets a clear JSON error and
reaches no upstream; a request that is well-formed HTTP but a bad image request is the GPU's to
judge, and its 400 comes back untouched without counting against the GPU.

Admin input is covered in test_admin_api.py (validation, URLs aimed at metadata addresses) and
test_admin_fuzz.py (generated requests: never a 500, never a change on a rejected one).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import StartGateway
from tests.support.selfhosted import by_id, endpoint, gateway_config, idle, wait_for
from tests.support.stack import Fake, GatewayProcess
from tests.test_selfhosted_e2e import overview, start

HEAD = b"Host: gateway\r\n"
GENERATIONS = b"POST /v1/images/generations HTTP/1.1\r\n"
CLOSE = b"Connection: close\r\n"
SMUGGLED = b"GET /v1/models HTTP/1.1\r\nHost: gateway\r\n\r\n"
"""Pipelined after each bad request on the same connection: it must never be served."""

REFUSED: dict[str, tuple[bytes, int, str]] = {
    # name: (raw request, status, error code)
    "bare LF inside a header value": (
        GENERATIONS + HEAD + b"X-Note: a\nX-Injected: 1\r\nContent-Length: 2\r\n\r\n{}",
        400,
        "malformed_request",
    ),
    "bare CR inside a header value": (
        GENERATIONS + HEAD + b"X-Note: a\rX-Injected: 1\r\nContent-Length: 2\r\n\r\n{}",
        400,
        "malformed_request",
    ),
    "NUL inside a header value": (
        GENERATIONS + HEAD + b"X-Note: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
        400,
        "malformed_request",
    ),
    "obsolete line folding": (
        GENERATIONS + HEAD + b"X-Note: a\r\n folded\r\nContent-Length: 2\r\n\r\n{}",
        400,
        "malformed_request",
    ),
    "space before the colon": (
        GENERATIONS + HEAD + b"Content-Length : 2\r\n\r\n{}",
        400,
        "malformed_request",
    ),
    "Content-Length with Transfer-Encoding": (
        GENERATIONS + HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        400,
        "malformed_request",
    ),
    "two different Content-Lengths": (
        GENERATIONS + HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
        400,
        "malformed_request",
    ),
    "Transfer-Encoding twice": (
        GENERATIONS + HEAD + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "malformed_request",
    ),
    "an unknown transfer coding": (
        GENERATIONS + HEAD + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        400,
        "malformed_request",
    ),
    "a negative Content-Length": (
        GENERATIONS + HEAD + b"Content-Length: -1\r\n\r\n",
        400,
        "malformed_request",
    ),
    "a method that is not a token": (
        b"P(ST /v1/images/generations HTTP/1.1\r\n" + HEAD + b"\r\n",
        400,
        "malformed_request",
    ),
    "a method the parser does not know": (
        b"BREW /v1/images/generations HTTP/1.1\r\n" + HEAD + b"\r\n",
        400,
        "malformed_request",
    ),
    "CONNECT": (b"CONNECT 169.254.169.254:80 HTTP/1.1\r\n" + HEAD + b"\r\n", 400, "malformed_request"),
    "a 20 KiB request target": (
        b"GET /v1/models?q=" + b"a" * 20_000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n",
        414,
        "url_too_long",
    ),
    "a 100 KiB header": (
        b"GET /v1/models HTTP/1.1\r\n" + HEAD + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
        431,
        "headers_too_large",
    ),
    "4,000 small headers": (
        b"GET /v1/models HTTP/1.1\r\n"
        + HEAD
        + b"".join(b"X-Header-%d: value\r\n" % index for index in range(4000))
        + b"\r\n",
        431,
        "headers_too_large",
    ),
}


@pytest.fixture
def routed(gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]) -> GatewayProcess:
    """Every image request is sent to gpu-a; everything else goes to the cloud."""
    return start(gateway_factory, cloud, [endpoint(gpus[0], "gpu-a")], percentage=100)


def exchange(gateway: GatewayProcess, data: bytes) -> bytes:
    """Send ``data`` on a new connection; everything the gateway answers until it closes."""
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(data)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def parsed(answer: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    assert len(body) == int(headers["content-length"]), "one complete answer"
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_malformed_or_oversized_request_head_is_refused_before_any_upstream(
    routed: GatewayProcess, cloud: Fake, gpus: list[Fake], name: str
) -> None:
    data, status, code = REFUSED[name]
    # Keep-alive is asked for and a second request follows at once: the gateway still answers the
    # bad one alone and closes the connection, so nothing after it can be read as a request.
    answered, headers, body = parsed(exchange(routed, data + SMUGGLED))
    assert answered == status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert (body["error"]["type"], body["error"]["code"]) == ("invalid_request_error", code)
    assert body["error"]["message"]
    assert cloud.stats()["requests"] == gpus[0].stats()["requests"] == 0
    # The gateway is unharmed: the next request on a new connection is served.
    assert routed.client().post("/v1/images/generations", json={"prompt": "x"}).status_code == 200


def test_the_limits_on_the_request_head_are_configurable(gateway_factory: StartGateway, cloud: Fake) -> None:
    gateway = gateway_factory(
        {"cloud": {"base_url": cloud.url}, "limits": {"max_url_bytes": 1024, "max_header_bytes": "2KiB"}}
    )
    client = gateway.client()
    assert client.get("/v1/models", params={"q": "a" * 900}).status_code == 404, "within: proxied"
    assert client.get("/v1/models", params={"q": "a" * 1100}).status_code == 414
    assert client.get("/v1/models", headers={"x-long": "a" * 1500}).status_code == 404
    assert client.get("/v1/models", headers={"x-long": "a" * 2100}).status_code == 431
    assert cloud.stats()["requests"] == 2


def test_an_encoded_line_break_in_the_path_is_forwarded_encoded_and_logged_on_one_line(
    gateway: GatewayProcess, cloud: Fake
) -> None:
    answer = exchange(gateway, b"GET /v1/models%0d%0aX-Injected:%201 HTTP/1.1\r\n" + HEAD + CLOSE + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 404 ")
    seen = cloud.stats()["recent"][-1]
    assert seen["path"] == "/v1/models%0d%0aX-Injected:%201", "passed on exactly as the client wrote it"
    assert all(name.lower() != "x-injected" for name, _ in seen["headers"])
    wait_for(lambda: {"log": gateway.process.stderr()}, lambda read: "/v1/models\\x0d" in read["log"])
    log = gateway.process.stderr()
    assert '"GET /v1/models\\x0d\\x0aX-Injected:\\x201" 404' in log
    assert not any(line.startswith("X-Injected") for line in log.splitlines())


def test_a_valid_but_unusual_method_is_proxied_and_never_reaches_a_gpu(
    routed: GatewayProcess, cloud: Fake, gpus: list[Fake]
) -> None:
    response = routed.client().request("PROPFIND", "/v1/images/generations")
    assert response.status_code == 405, "the cloud's own answer"
    assert response.headers["x-gateway-route"] == "cloud"
    assert cloud.stats()["recent"][-1]["method"] == "PROPFIND"
    assert gpus[0].stats()["requests"] == 0


@pytest.mark.parametrize(
    "request_parts",
    [
        ("/v1/images/generations", "application/json", b'{"prompt": "unterminated'),
        ("/v1/images/generations", "application/json", b"[1, 2, 3]"),
        ("/v1/images/edits", "multipart/form-data; boundary=XYZ", b"--XYZ\r\nnot a part\r\n"),
        ("/v1/images/edits", "multipart/form-data", b"no boundary at all"),
    ],
    ids=["truncated-json", "json-not-an-object", "broken-multipart", "multipart-without-boundary"],
)
def test_a_malformed_image_request_gets_the_gpus_400_untouched_and_no_failure(
    routed: GatewayProcess, cloud: Fake, gpus: list[Fake], request_parts: tuple[str, str, bytes]
) -> None:
    path, content_type, body = request_parts
    direct = httpx.post(f"{gpus[0].url}{path}", content=body, headers={"content-type": content_type})
    assert direct.status_code == 400
    gpus[0].control.reset()
    response = routed.client().post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.headers["x-gateway-route"] == "selfhosted/gpu-a"
    assert response.content == direct.content, "the GPU's own error body, byte for byte"
    assert gpus[0].stats()["requests"] == 1, "a request error is not retried"
    state = wait_for(lambda: overview(routed), idle)
    assert by_id(state)["gpu-a"]["consecutive_failures"] == 0
    assert by_id(state)["gpu-a"]["circuit"]["state"] == "closed"
    assert cloud.stats()["requests"] == 0


@pytest.mark.parametrize("framing", ["declared", "chunked"])
def test_an_oversized_image_request_is_413_before_any_upstream(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake], framing: str
) -> None:
    config = gateway_config(cloud, [endpoint(gpus[0], "gpu-a")])
    gateway = gateway_factory({**config, "limits": {"max_body_bytes": "1MiB"}})
    wait_for(lambda: overview(gateway), lambda state: by_id(state)["gpu-a"]["health"]["status"] == "healthy")
    body = b'{"prompt": "' + b"a" * (2 * 2**20) + b'"}'

    def pieces() -> Iterator[bytes]:
        for offset in range(0, len(body), 65536):
            yield body[offset : offset + 65536]

    content: bytes | Iterator[bytes] = body if framing == "declared" else pieces()
    response = gateway.client().post(
        "/v1/images/generations", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].endswith("larger than the limit of 1048576 bytes")
    assert gpus[0].stats()["requests"] == cloud.stats()["requests"] == 0
    state = wait_for(lambda: overview(gateway), idle)
    assert by_id(state)["gpu-a"]["consecutive_failures"] == 0
