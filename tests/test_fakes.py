"""The simulated upstreams (loadtests.fakes), driven over real loopback sockets.

Most tests run a fake in a background thread (``BackgroundFake``) and talk to it with raw
sockets or ``http.client``, so that resets, hangs and short bodies are seen as a client sees them.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests.fakes import BackgroundFake, FakeConfig, FakeControl, FakeControlError
from loadtests.fakes.config import FailMode, HealthMode

ROOT = Path(__file__).resolve().parent.parent
Reply = tuple[int, dict[str, str], bytes]
MakeFake = Callable[..., BackgroundFake]


@pytest.fixture
def make_fake() -> Iterator[MakeFake]:
    started: list[BackgroundFake] = []

    def make(kind: str = "gpu", config: FakeConfig | None = None, **options: Any) -> BackgroundFake:
        fake = BackgroundFake(kind, config, **options).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def gpu(make_fake: MakeFake) -> BackgroundFake:
    return make_fake("gpu")


# -- helpers ---------------------------------------------------------------------------------


def request(
    fake: BackgroundFake,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> Reply:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def generate(fake: BackgroundFake, headers: dict[str, str] | None = None, **fields: Any) -> Reply:
    return request(fake, "POST", "/v1/images/generations", {"prompt": "a cat", **fields}, headers=headers)


def raw_exchange(port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    """Send ``payload`` and read until the server closes (or resets) the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def generations_request(extra_headers: str = "") -> bytes:
    body = b'{"prompt": "a cat"}'
    head = (
        "POST /v1/images/generations HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra_headers}\r\n"
    )
    return head.encode() + body


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def check_png(data: bytes) -> list[bytes]:
    """Assert ``data`` is a well-formed PNG (signature, IHDR first, CRCs, IEND last); its chunk types."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    kinds: list[bytes] = []
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        content = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + content), f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            assert struct.unpack(">II", content[:8]) == (64, 64)
        kinds.append(kind)
        offset += 12 + length
    assert offset == len(data)
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"
    return kinds


def images_of(body: bytes, count: int) -> list[bytes]:
    document = json.loads(body)
    assert isinstance(document["created"], int)
    assert len(document["data"]) == count
    return [base64.b64decode(item["b64_json"]) for item in document["data"]]


def error_type(body: bytes) -> str:
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    kind: str = error["type"]
    return kind


# -- images ----------------------------------------------------------------------------------


def test_generations_answer_holds_n_valid_pngs(gpu: BackgroundFake) -> None:
    status, headers, body = generate(gpu, n=3, size="1024x1024", model="x", unknown_field=1)
    assert status == 200
    assert headers["content-type"] == "application/json"
    images = images_of(body, 3)
    for image in images:
        assert check_png(image) == [b"IHDR", b"IDAT", b"IEND"]
    assert len(set(images)) == 3, "each image has its own colour"


def test_edits_accept_image_arrays_and_a_mask(gpu: BackgroundFake) -> None:
    files = [
        ("image[]", ("a.png", b"first image", "image/png")),
        ("image[]", ("b.png", b"second\r\n--image", "image/png")),
        ("mask", ("m.png", b"mask", "image/png")),
    ]
    with httpx.Client(base_url=gpu.url) as client:
        answer = client.post("/v1/images/edits", files=files, data={"prompt": "edit it", "n": "2"})
        single = client.post("/v1/images/edits", files={"image": ("a.png", b"x")}, data={"prompt": "p"})
    assert answer.status_code == 200
    for image in images_of(answer.content, 2) + images_of(single.content, 1):
        check_png(image)


@pytest.mark.parametrize(("n", "target"), [(1, 3_000_000), (2, 100_001), (3, 1_000)])
def test_padded_answer_has_the_exact_size_and_valid_pngs(make_fake: MakeFake, n: int, target: int) -> None:
    fake = make_fake(config=FakeConfig(response_bytes=target))
    status, headers, body = generate(fake, n=n)
    assert status == 200
    assert int(headers["content-length"]) == len(body) == target
    for image in images_of(body, n):
        assert b"pdDg" in check_png(image)


def test_a_target_below_the_natural_size_gives_the_natural_answer(gpu: BackgroundFake) -> None:
    status, headers, body = generate(gpu, headers={"x-fake-response-bytes": "10"})
    assert status == 200
    assert int(headers["content-length"]) == len(body) > 10
    check_png(images_of(body, 1)[0])


def test_bad_requests_get_openai_errors(make_fake: MakeFake) -> None:
    fake = make_fake("cloud")
    cases: list[tuple[str, str, bytes | dict[str, Any], int, str]] = [
        ("POST", "/v1/images/generations", b"{not json", 400, "invalid_request_error"),
        ("POST", "/v1/images/generations", {"n": 1}, 400, "invalid_request_error"),
        ("POST", "/v1/images/generations", {"prompt": "x", "n": 11}, 400, "invalid_request_error"),
        ("POST", "/v1/images/edits", {"prompt": "x"}, 400, "invalid_request_error"),
        ("GET", "/v1/images/generations", b"", 405, "invalid_request_error"),
        ("POST", "/v1/nothing", b"", 404, "not_found_error"),
    ]
    for method, path, body, status, kind in cases:
        got, _, answer = request(fake, method, path, body)
        assert (got, error_type(answer)) == (status, kind), (method, path, body)
    with httpx.Client(base_url=fake.url) as client:
        no_image = client.post("/v1/images/edits", files={"mask": ("m.png", b"m")}, data={"prompt": "p"})
        no_prompt = client.post("/v1/images/edits", files={"image": ("a.png", b"a")})
    assert no_image.status_code == no_prompt.status_code == 400
    assert [no_image.json()["error"]["param"], no_prompt.json()["error"]["param"]] == ["image", "prompt"]


def test_motion_transfer_exists_on_the_cloud_only(make_fake: MakeFake) -> None:
    cloud, gpu = make_fake("cloud"), make_fake("gpu")
    status, _, body = request(cloud, "POST", "/v1/videos/motion-transfer", {"video": "x"})
    job = json.loads(body)
    assert status == 200
    assert job["id"].startswith("mt_")
    assert (job["object"], job["status"]) == ("video.motion_transfer", "queued")
    assert request(gpu, "POST", "/v1/videos/motion-transfer", {})[0] == 404


def test_api_key_guards_api_routes_only(make_fake: MakeFake) -> None:
    fake = make_fake(config=FakeConfig(api_key="sekret"))
    status, _, body = generate(fake)
    assert (status, error_type(body)) == (401, "authentication_error")
    assert generate(fake, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert generate(fake, headers={"Authorization": "Bearer sekret"})[0] == 200
    assert request(fake, "GET", "/health")[0] == 200
    assert fake.control.stats()["config"]["api_key_required"] is True


# -- health ----------------------------------------------------------------------------------


def test_health_modes(make_fake: MakeFake) -> None:
    fake = make_fake(config=FakeConfig(health=HealthMode.UNHEALTHY))
    assert request(fake, "GET", "/health")[::2] == (503, b'{"status": "unhealthy"}')
    fake.control.configure(health="flap")
    statuses = [request(fake, "GET", "/health")[0] for _ in range(4)]
    assert statuses == [200, 503, 200, 503]
    fake.control.configure(health="hang")
    with pytest.raises(TimeoutError):
        request(fake, "GET", "/health", timeout=0.3)
    fake.control.configure(health="ok")
    assert request(fake, "GET", "/health")[::2] == (200, b'{"status": "ok"}')
    stats = fake.control.stats()
    assert (stats["health_checks"], stats["requests"]) == (7, 0)


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("400", "invalid_request_error"),
        ("429", "rate_limit_error"),
        ("500", "server_error"),
        ("502", "server_error"),
        ("503", "server_error"),
        ("504", "server_error"),
    ],
)
def test_status_faults_answer_json_errors(gpu: BackgroundFake, mode: str, kind: str) -> None:
    status, headers, body = generate(gpu, headers={"x-fake-fail": mode})
    assert (status, error_type(body)) == (int(mode), kind)
    assert (headers.get("retry-after") == "1") is (mode == "429")


def test_hang_reads_the_request_and_never_answers(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="hang")
    with socket.create_connection(("127.0.0.1", gpu.port), timeout=0.3) as sock:
        sock.sendall(generations_request())
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert gpu.control.stats()["in_flight"] == 1
    stats = gpu.control.wait_for(lambda s: s["in_flight"] == 0 and s["open_connections"] == 0)
    assert stats["recent"][-1]["outcome"] == "hang"
    assert stats["faults_injected"] == 1


def test_reset_aborts_before_any_byte(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="reset")
    try:
        received = raw_exchange(gpu.port, generations_request())
    except ConnectionResetError:
        received = b""
    assert received == b""
    assert generate(gpu, headers={"x-fake-fail": "none"})[0] == 200, "the server survives"


def test_reset_mid_body_sends_part_of_the_declared_body(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="reset_mid_body", response_bytes=200_000)
    received = b""
    with socket.create_connection(("127.0.0.1", gpu.port), timeout=2.0) as sock:
        sock.sendall(generations_request())
        with pytest.raises(ConnectionResetError):  # noqa: PT012 - the bytes before the reset count
            while chunk := sock.recv(65536):
                received += chunk
    status, headers, body = split_response(received)
    assert (status, int(headers["content-length"])) == (200, 200_000)
    assert 50_000 < len(body) < 200_000


def test_truncated_json_has_matching_length_and_broken_json(gpu: BackgroundFake) -> None:
    status, headers, body = generate(gpu, headers={"x-fake-fail": "truncated_json"})
    assert status == 200
    assert int(headers["content-length"]) == len(body) > 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_slow_headers_pauses_after_the_status_line(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="slow_headers", latency=0.25)
    with socket.create_connection(("127.0.0.1", gpu.port), timeout=2.0) as sock:
        sock.sendall(generations_request("Connection: close\r\n"))
        started = time.monotonic()
        first = sock.recv(65536)
        assert first == b"HTTP/1.1 200 OK\r\n"
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert time.monotonic() - started >= 0.2
    check_png(images_of(split_response(first + rest)[2], 1)[0])


def test_slow_body_dribbles_at_the_configured_rate(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="slow_body", slow_rate=4000, response_bytes=1000)
    started = time.monotonic()
    status, _, body = generate(gpu)
    elapsed = time.monotonic() - started
    assert (status, len(body)) == (200, 1000)
    assert 0.15 < elapsed < 1.0


def test_refuse_closes_the_main_port_until_the_mode_changes(make_fake: MakeFake) -> None:
    fake = make_fake(control_port=0)
    fake.control.configure(fail="refuse")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1.0).close()
    fake.control.configure(fail="none")
    assert generate(fake)[0] == 200


def test_refuse_without_a_control_port_is_a_reset(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="refuse")
    with pytest.raises(ConnectionResetError):
        raw_exchange(gpu.port, generations_request())
    assert gpu.control.stats()["recent"][-1]["outcome"] == "refuse"


def test_fail_modes_cycle_over_successive_requests(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="500,none,503")
    statuses = [generate(gpu)[0] for _ in range(4)]
    assert statuses == [500, 200, 503, 500]
    stats = gpu.control.stats()
    assert stats["faults_injected"] == 3
    assert [entry["outcome"] for entry in stats["recent"]] == ["500", "ok", "503", "500"]


# -- stats and control -----------------------------------------------------------------------


def test_stats_count_api_requests_by_route_and_reset(gpu: BackgroundFake) -> None:
    generate(gpu)
    generate(gpu)
    request(gpu, "PUT", "/echo/x?q=1", b"payload")
    request(gpu, "GET", "/health")
    stats = gpu.control.stats()
    assert stats["name"] == f"gpu-{gpu.port}"
    assert stats["kind"] == "gpu"
    assert stats["requests"] == 3
    assert stats["health_checks"] == 1
    assert stats["by_route"] == {"POST /v1/images/generations": 2, "PUT /echo": 1}
    last = stats["recent"][-1]
    assert (last["method"], last["path"], last["query"], last["body_bytes"]) == ("PUT", "/echo/x", "q=1", 7)
    assert last["outcome"] == "ok"
    assert ["host", f"127.0.0.1:{gpu.port}"] in last["headers"]
    after = gpu.control.reset()
    assert (after["requests"], after["recent"], after["by_route"]) == (0, [], {})
    assert after["config"] == stats["config"]


def test_config_changes_apply_at_once_and_bad_input_changes_nothing(gpu: BackgroundFake) -> None:
    config = gpu.control.configure(latency=0.01, fail=["500", 503], response_bytes=5000, slow_rate=10)
    assert (config["latency"], config["fail"], config["response_bytes"]) == (0.01, ["500", "503"], 5000)
    for bad in ({"fail": "explode"}, {"latency": -1}, {"health": "meh"}, {"colour": "red"}):
        with pytest.raises(FakeControlError) as caught:
            gpu.control.configure(**{"slow_rate": 99, **bad})
        assert caught.value.status == 400
    assert gpu.control.stats()["config"] == config


def test_peak_concurrency_counts_simultaneous_slow_requests(gpu: BackgroundFake) -> None:
    gpu.control.configure(latency=0.3)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: generate(gpu)[0], range(4)))
    assert statuses == [200] * 4
    stats = gpu.control.stats()
    assert (stats["peak_concurrency"], stats["in_flight"]) == (4, 0)


def test_open_connections_follow_clients_and_exclude_the_asker(gpu: BackgroundFake) -> None:
    socks = [socket.create_connection(("127.0.0.1", gpu.port), timeout=2.0) for _ in range(3)]
    try:
        gpu.control.wait_for(lambda s: s["open_connections"] == 3)
        with socket.create_connection(("127.0.0.1", gpu.port), timeout=2.0) as asker:
            asker.sendall(b"GET /_fake/stats HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n")
            _, _, body = split_response(asker.makefile("rb").read())
        assert json.loads(body)["open_connections"] == 3
    finally:
        for sock in socks:
            sock.close()
    gpu.control.wait_for(lambda s: s["open_connections"] == 0)


def test_a_client_leaving_during_latency_is_recorded_and_released(gpu: BackgroundFake) -> None:
    gpu.control.configure(latency=5.0)
    with socket.create_connection(("127.0.0.1", gpu.port), timeout=2.0) as sock:
        sock.sendall(generations_request())
        gpu.control.wait_for(lambda s: s["in_flight"] == 1)
    stats = gpu.control.wait_for(lambda s: s["in_flight"] == 0 and s["open_connections"] == 0)
    assert stats["recent"][-1]["outcome"] == "client_closed"


# -- echo, bytes, overrides, keep-alive ------------------------------------------------------


def test_echo_reports_the_request_and_sets_hop_by_hop_headers(gpu: BackgroundFake) -> None:
    extra = [
        ["Connection", "x-hop"],
        ["X-Hop", "1"],
        ["Keep-Alive", "timeout=5"],
        ["Proxy-Authenticate", "Basic"],
        ["Trailer", "X-T"],
        ["Upgrade", "h2c"],
    ]
    payload = b"GET /echo/a/b?x=1&y=2 HTTP/1.1\r\nHost: f\r\nX-First: 1\r\nX-Fake-Set-Headers: "
    payload += json.dumps(extra).encode() + b"\r\nConnection: close\r\n\r\n"
    raw = raw_exchange(gpu.port, payload)
    status, _, body = split_response(raw)
    document = json.loads(body)
    assert status == 200
    assert (document["method"], document["path"], document["query"]) == ("GET", "/echo/a/b", "x=1&y=2")
    assert [name for name, _ in document["headers"]][:2] == ["host", "x-first"]
    assert document["body_bytes"] == 0
    raw_head = raw.split(b"\r\n\r\n")[0].decode()
    for name, value in extra:
        assert f"\r\n{name}: {value}" in raw_head
    assert request(gpu, "GET", "/echo", headers={"x-fake-set-headers": '[["Content-Length", "1"]]'})[0] == 400


def test_bytes_streams_the_requested_length(gpu: BackgroundFake) -> None:
    status, headers, body = request(gpu, "GET", "/bytes/300000")
    assert (status, int(headers["content-length"]), len(body)) == (200, 300_000, 300_000)
    assert headers["content-type"] == "application/octet-stream"
    status, headers, chunked = request(gpu, "GET", "/bytes/300000?chunked=1")
    assert (status, headers["transfer-encoding"], chunked) == (200, "chunked", body)
    assert request(gpu, "GET", "/bytes/lots")[0] == 400


def test_per_request_headers_override_the_config(gpu: BackgroundFake) -> None:
    gpu.control.configure(fail="500")
    started = time.monotonic()
    status, headers, _ = generate(
        gpu, headers={"x-fake-fail": "none", "x-fake-latency": "0.2", "x-fake-response-bytes": "4321"}
    )
    assert time.monotonic() - started >= 0.2
    assert (status, headers["content-length"]) == (200, "4321")
    assert generate(gpu, headers={"x-fake-latency": "soon"})[0] == 400
    assert generate(gpu)[0] == 500, "overrides do not consume a slot of the fail cycle"


def test_keep_alive_serves_pipelined_requests_in_order(gpu: BackgroundFake) -> None:
    first = b"GET /bytes/5 HTTP/1.1\r\nHost: f\r\n\r\n"
    second = b"GET /echo/two HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"
    raw = raw_exchange(gpu.port, first + second)
    assert raw.count(b"HTTP/1.1 200 OK") == 2
    assert raw.index(b"Content-Length: 5") < raw.index(b'"path": "/echo/two"')
    assert gpu.control.stats()["by_route"] == {"GET /bytes/{n}": 1, "GET /echo": 1}


def test_fail_mode_enum_and_control_client_urls() -> None:
    assert FailMode("503").status == 503
    assert FailMode.HANG.status is None
    with pytest.raises(ValueError, match="http://host:port"):
        FakeControl("127.0.0.1:80")


# -- command line ----------------------------------------------------------------------------


def test_cli_prints_one_line_serves_and_stops_on_sigterm() -> None:
    argv = [sys.executable, "-m", "loadtests.fakes", "cloud", "--port", "0", "--name", "c1", "--fail", "503"]
    with subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("fake-cloud c1 listening on http://127.0.0.1:")
            url = line.rsplit(" ", 1)[1]
            assert httpx.post(f"{url}/v1/images/generations", json={"prompt": "p"}).status_code == 503
            assert FakeControl(url).stats()["name"] == "c1"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
            assert process.stdout.read() == ""
        finally:
            if process.poll() is None:
                process.kill()


def test_slots_make_requests_beyond_capacity_wait_their_turn(make_fake: MakeFake) -> None:
    fake = make_fake("gpu", FakeConfig(latency=0.15, slots=2))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(
            pool.map(
                lambda _: httpx.post(f"{fake.url}/v1/images/generations", json={"prompt": "x"}).status_code,
                range(4),
            )
        )
    assert statuses == [200] * 4
    stats = fake.control.stats()
    assert stats["peak_concurrency"] == 4, "all four were at the GPU"
    spans = sorted((entry["started_at"], entry["finished_at"]) for entry in stats["recent"])
    busy = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert busy == 2, "but at most two were served at once"
    assert all(entry["received_at"] <= entry["started_at"] for entry in stats["recent"])
    assert fake.control.configure(slots=3)["slots"] == 3
