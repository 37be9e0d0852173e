"""Admin changes survive restarts, hand edits apply without one, and a failed write changes nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from config.atomic import atomic_write, stale_temporaries
from config.roundtrip import RoundTrip, load_yaml, new_mapping
from gateway.document import ConfigDocument
from gateway.loading import config_model
from tests.conftest import StartGateway
from tests.support.selfhosted import all_healthy, by_id, configured_endpoints, wait_for
from tests.support.stack import ADMIN_TOKEN, Fake, GatewayProcess

API = "/api/v1/admin/selfhosted"

HAND_WRITTEN = """\
# A gateway.yaml written by a person: comments, order and ${{ENV}} references must survive edits.
server:
  host: 127.0.0.1
  port: {port}

cloud:
  base_url: {cloud}   # the simulated cloud

admin:
  token: ${{TEST_ADMIN_TOKEN}}

plugins:
  - name: selfhosted
    config:
      routing:
        enabled: true
        routing_percentage: 20    # start low, then scale up
      health_ttl: 30
      endpoints:
        - id: gpu-a
          name: GPU A
          url: {gpu_a}
          api_key: ${{GPU_A_KEY:-}}   # from the environment, never written out
          max_concurrency: 2
"""


def overview(gateway: GatewayProcess) -> dict[str, Any]:
    document: dict[str, Any] = gateway.admin().get(API).json()
    return document


@pytest.fixture
def written(gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]) -> GatewayProcess:
    gateway = gateway_factory({"cloud": {"base_url": cloud.url}}, env={"TEST_ADMIN_TOKEN": ADMIN_TOKEN})
    port = gateway.url.rsplit(":", 1)[1]
    gateway.config_path.write_text(HAND_WRITTEN.format(port=port, cloud=cloud.url, gpu_a=gpus[0].url))
    again = gateway_factory.restart(gateway)
    wait_for(lambda: overview(again), all_healthy)
    return again


def test_changes_are_written_back_keeping_comments_order_and_references(
    written: GatewayProcess, gpus: list[Fake]
) -> None:
    admin = written.admin()
    admin.put(f"{API}/routing", json={"routing_percentage": 35})
    admin.post(f"{API}/endpoints", json={"name": "GPU B", "url": gpus[1].url, "max_concurrency": 4})
    admin.patch(f"{API}/endpoints/gpu-a", json={"status": "draining"})
    text = written.config_path.read_text()
    assert text.startswith("# A gateway.yaml written by a person")
    assert "routing_percentage: 35    # start low, then scale up" in text
    assert "api_key: ${GPU_A_KEY:-}   # from the environment, never written out" in text
    assert "token: ${TEST_ADMIN_TOKEN}" in text, "a resolved secret is never written out"
    assert ADMIN_TOKEN not in text
    assert "          status: draining" in text
    assert "        - id: gpu-b\n          name: GPU B\n" in text
    assert text.index("server:") < text.index("cloud:") < text.index("plugins:")


def test_a_restart_comes_back_with_what_the_admins_left(
    written: GatewayProcess, gateway_factory: StartGateway, gpus: list[Fake]
) -> None:
    admin = written.admin()
    admin.put(f"{API}/routing", json={"enabled": False, "routing_percentage": 60})
    admin.post(
        f"{API}/endpoints", json={"name": "GPU B", "url": gpus[1].url, "max_concurrency": 4, "weight": 3}
    )
    admin.patch(f"{API}/endpoints/gpu-a", json={"max_concurrency": 1, "capabilities": ["image-to-image"]})
    before = overview(written)
    restarted = gateway_factory.restart(written)
    after = wait_for(lambda: overview(restarted), all_healthy)
    assert after["routing"] == before["routing"] == {"enabled": False, "routing_percentage": 60}
    assert configured_endpoints(after) == configured_endpoints(before)


def test_a_valid_hand_edit_applies_without_a_restart_or_a_dropped_request(
    written: GatewayProcess, gpus: list[Fake]
) -> None:
    gpus[0].control.configure(latency=1.0)
    written.admin().put(f"{API}/routing", json={"routing_percentage": 100})
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(
            written.client().post, "/v1/images/generations", json={"prompt": "during the edit"}
        )
        wait_for(lambda: overview(written), lambda s: by_id(s)["gpu-a"]["current_load"] == 1)
        text = written.config_path.read_text().replace("max_concurrency: 2", "max_concurrency: 5")
        written.config_path.write_text(text)
        wait_for(lambda: overview(written), lambda s: by_id(s)["gpu-a"]["max_concurrency"] == 5, timeout=10)
        response = in_flight.result(timeout=30)
    assert response.status_code == 200
    assert response.headers["x-gateway-route"] == "selfhosted/gpu-a"
    assert overview(written)["config_error"] is None


def test_an_invalid_hand_edit_is_refused_and_shown_until_a_valid_one(written: GatewayProcess) -> None:
    good = written.config_path.read_text()
    written.config_path.write_text(good.replace("routing_percentage: 20", "routing_percentage: 140"))
    state = wait_for(lambda: overview(written), lambda s: s["config_error"] is not None, timeout=10)
    assert state["config_error"]["problems"] == [
        {
            "path": "plugins[0].config.routing.routing_percentage",
            "message": "must be between 0 and 100 (got 140)",
        }
    ]
    assert state["routing"]["routing_percentage"] == 20, "the running configuration stays"
    assert "edit refused" in written.process.stderr()
    written.config_path.write_text(good.replace("routing_percentage: 20", "routing_percentage: 45"))
    state = wait_for(lambda: overview(written), lambda s: s["config_error"] is None, timeout=10)
    assert state["routing"]["routing_percentage"] == 45


def test_a_hand_edit_that_is_not_yaml_is_refused_and_shown(written: GatewayProcess) -> None:
    good = written.config_path.read_text()
    written.config_path.write_text(good.replace("routing_percentage: 20", "routing_percentage: [20"))
    state = wait_for(lambda: overview(written), lambda s: s["config_error"] is not None, timeout=10)
    [problem] = state["config_error"]["problems"]
    assert problem["path"] == ""
    assert problem["message"].startswith("not valid YAML at line "), problem
    assert state["routing"]["routing_percentage"] == 20, "the running configuration stays"
    assert "Traceback" not in written.process.stderr()
    written.config_path.write_text(good)
    wait_for(lambda: overview(written), lambda s: s["config_error"] is None, timeout=10)


# Strings a YAML emitter left to itself writes in a form that reads back as something else, or not
# at all: control characters, NEL and the Unicode line separators, a byte order mark, and a leading
# "?" inside {...}.
AWKWARD_STRINGS = ["?x", "? x", "x\ty", "\x85", "a\x85b", "\u2028", "\u2029", "\x9c5", "\ufeffx", "\x7f"]


@pytest.mark.parametrize("style", ["block", "flow"])
def test_every_string_written_reads_back_the_same(style: str) -> None:
    text = "a: [1]\nitems: []\n" if style == "block" else "{a: [1], items: []}\n"
    round_trip = RoundTrip(text)
    tree = load_yaml(text)
    for value in AWKWARD_STRINGS:
        tree["items"].append(new_mapping({"name": value, "tags": [value]}))
    again = load_yaml(round_trip.dump(tree))
    assert [item["name"] for item in again["items"]] == AWKWARD_STRINGS
    assert [item["tags"][0] for item in again["items"]] == AWKWARD_STRINGS


def test_a_hand_edit_outside_the_plugins_asks_for_a_restart(written: GatewayProcess) -> None:
    text = written.config_path.read_text().replace("admin:\n", "limits:\n  max_body_bytes: 1MiB\n\nadmin:\n")
    written.config_path.write_text(text)
    state = wait_for(lambda: overview(written), lambda s: s["restart_required"] == ["limits"], timeout=10)
    assert state["config_error"] is None


def test_a_failed_write_is_an_error_and_applies_nothing(written: GatewayProcess, tmp_path: Path) -> None:
    folder = written.config_path.parent
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    folder.rename(moved)  # the gateway can no longer write next to gateway.yaml
    try:
        failed = written.admin().put(f"{API}/routing", json={"routing_percentage": 99})
        assert failed.status_code == 500
        assert failed.json()["error"]["code"] == "config_write_failed"
        assert overview(written)["routing"]["routing_percentage"] == 20
    finally:
        moved.rename(folder)
    assert written.admin().put(f"{API}/routing", json={"routing_percentage": 99}).status_code == 200


def test_a_crash_during_the_write_leaves_the_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    original = "cloud:\n  base_url: http://127.0.0.1:9100   # keep me\n"
    path.write_text(original)
    crash = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from config.atomic import atomic_write
        new = "cloud: {{base_url: 'http://new'}}\\n"
        atomic_write(Path({str(path)!r}), new, 0o644, before_rename=lambda: os._exit(9))
    """)
    result = subprocess.run(
        [sys.executable, "-c", crash], cwd=Path(__file__).resolve().parents[1], check=False
    )
    assert result.returncode == 9, "the writer died between the durable temporary file and the rename"
    assert path.read_text() == original
    assert len(stale_temporaries(path)) == 1, "a crash leaves at most a temporary file"
    document = ConfigDocument(path, config_model, {})
    assert stale_temporaries(path) == [], "which the next start removes"
    assert document.config.cloud.base_url == "http://127.0.0.1:9100"


def test_a_failing_write_removes_its_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("old\n")

    def fail() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, "new\n", 0o600, before_rename=fail)
    assert path.read_text() == "old\n"
    assert stale_temporaries(path) == []


def test_round_trip_keeps_an_untouched_file_byte_for_byte() -> None:
    text = (Path(__file__).resolve().parents[1] / "gateway.yaml").read_text()
    round_trip = RoundTrip(text)
    assert round_trip.dump(load_yaml(text)) == text


def test_drained_and_deleted_endpoints_finish_their_requests(
    written: GatewayProcess, gpus: list[Fake]
) -> None:
    admin = written.admin()
    admin.post(f"{API}/endpoints", json={"name": "GPU B", "url": gpus[1].url})
    wait_for(lambda: overview(written), all_healthy)
    admin.put(f"{API}/routing", json={"routing_percentage": 100})
    for fake in gpus[:2]:
        fake.control.configure(latency=1.0)
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = [
            pool.submit(written.client().post, "/v1/images/generations", json={"prompt": str(i)})
            for i in range(4)
        ]
        wait_for(lambda: overview(written), lambda s: all(e["current_load"] == 2 for e in s["endpoints"]))
        assert admin.patch(f"{API}/endpoints/gpu-a", json={"status": "draining"}).status_code == 200
        assert admin.delete(f"{API}/endpoints/gpu-b").status_code == 204
        responses = [future.result(timeout=30) for future in pending]
    assert [response.status_code for response in responses] == [200] * 4
    assert sorted(response.headers["x-gateway-route"] for response in responses) == [
        "selfhosted/gpu-a",
        "selfhosted/gpu-a",
        "selfhosted/gpu-b",
        "selfhosted/gpu-b",
    ]
    for fake in gpus[:2]:
        fake.control.configure(latency=0)
    after = written.client().post("/v1/images/generations", json={"prompt": "after"})
    assert after.headers["x-gateway-route"] == "cloud", (
        "a draining endpoint and a deleted one get nothing new"
    )
