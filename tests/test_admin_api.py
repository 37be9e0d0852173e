"""The admin REST API of the selfhosted plugin: every route, validation, auth, secrets, ETags, audit."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import load_config
from gateway.loading import config_model
from plugins.selfhosted.config import SelfHostedConfig
from tests.conftest import StartGateway
from tests.support.selfhosted import all_healthy, by_id, endpoint, gateway_config, wait_for
from tests.support.stack import ADMIN_TOKEN, Fake, GatewayProcess, start_fake, start_gateway

API = "/api/v1/admin/selfhosted"
SECRET = "sk-gpu-SECRET-7f3a91d2"  # noqa: S105 - the value every test searches for


def start(
    gateway_factory: StartGateway, cloud: Fake, endpoints: list[dict[str, Any]], **settings: Any
) -> GatewayProcess:
    gateway = gateway_factory(gateway_config(cloud, endpoints, **settings))
    wait_for(lambda: overview(gateway), all_healthy)
    return gateway


def overview(gateway: GatewayProcess) -> dict[str, Any]:
    response = gateway.admin().get(API)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    return body


@pytest.fixture
def gateway(gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]) -> GatewayProcess:
    return start(
        gateway_factory, cloud, [endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")], percentage=0
    )


@pytest.fixture(scope="module")
def refusing(
    tmp_path_factory: pytest.TempPathFactory, _cloud_process: Fake, _gpu_processes: list[Fake]
) -> Iterator[GatewayProcess]:
    """One gateway for the tests whose every request must be refused (so they cannot disturb each other)."""
    gpus = _gpu_processes
    config = gateway_config(
        _cloud_process, [endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")], percentage=0
    )
    gateway = start_gateway(config, tmp_path_factory.mktemp("refusing"), "refusing")
    wait_for(lambda: overview(gateway), all_healthy)
    yield gateway
    gateway.stop()
    log = gateway.process.stderr()
    assert "Traceback" not in log, log


def test_overview_lists_routing_settings_queue_totals_endpoints_and_log(gateway: GatewayProcess) -> None:
    response = gateway.admin().get(API)
    assert response.headers["etag"].startswith('"')
    state = response.json()
    assert state["routing"] == {"enabled": True, "routing_percentage": 0}
    assert state["settings"]["timeout"] == 90
    assert state["settings"]["retries"] == 2
    assert state["queue"] == {"depth": 0, "oldest_wait_ms": None}
    assert set(state["totals"]) == {"selfhosted", "cloud", "rejected", "by_reason"}
    assert state["config_error"] is None
    gpu = by_id(state)["gpu-a"]
    for key in (
        "id",
        "name",
        "url",
        "api_key",
        "status",
        "max_concurrency",
        "capabilities",
        "weight",
        "health",
        "last_error",
        "current_load",
        "avg_latency_ms",
        "p95_latency_ms",
        "consecutive_failures",
        "circuit",
    ):
        assert key in gpu, key
    assert set(gpu["circuit"]) == {"state", "opened_at", "reset_at"}
    assert gateway.admin().get(f"{API}/").json()["routing"] == state["routing"], (
        "the trailing slash is the same route"
    )


def test_routing_changes_apply_to_the_next_request(gateway: GatewayProcess, gpus: list[Fake]) -> None:
    client, admin = gateway.client(), gateway.admin()
    assert client.post("/v1/images/generations", json={"prompt": "x"}).headers["x-gateway-route"] == "cloud"
    changed = admin.put(f"{API}/routing", json={"routing_percentage": 100})
    assert changed.json() == {"routing": {"enabled": True, "routing_percentage": 100}}
    assert (
        client.post("/v1/images/generations", json={"prompt": "x"})
        .headers["x-gateway-route"]
        .startswith("selfhosted/")
    )
    admin.put(f"{API}/routing", json={"enabled": False})
    assert client.post("/v1/images/generations", json={"prompt": "x"}).headers["x-gateway-route"] == "cloud"
    assert overview(gateway)["routing"] == {"enabled": False, "routing_percentage": 100}


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"routing_percentage": 140}, "routing_percentage", "must be between 0 and 100 (got 140)"),
        ({"routing_percentage": -1}, "routing_percentage", "must be between 0 and 100"),
        ({"routing_percentage": "50"}, "routing_percentage", "must be a number"),
        ({"routing_percentage": True}, "routing_percentage", "must be a number"),
        ({"enabled": "yes"}, "enabled", "must be true or false"),
        ({"enabled": 1}, "enabled", "must be true or false"),
        ({"percent": 10}, "percent", "is not a known key"),
    ],
)
def test_bad_routing_is_422_naming_the_field_and_changes_nothing(
    refusing: GatewayProcess, body: dict[str, Any], param: str, fragment: str
) -> None:
    gateway = refusing
    before = gateway.config_path.read_bytes()
    problem = error(gateway.admin().put(f"{API}/routing", json=body), 422)
    assert problem["param"] == param
    assert fragment in problem["message"]
    assert gateway.config_path.read_bytes() == before
    assert overview(gateway)["routing"]["routing_percentage"] == 0


def test_malformed_bodies_are_400(gateway: GatewayProcess) -> None:
    admin = gateway.admin()
    before, state = gateway.config_path.read_bytes(), overview(gateway)
    assert error(admin.put(f"{API}/routing", content=b"{not json"), 400)["code"] == "invalid_json"
    assert error(admin.put(f"{API}/routing", json=[1, 2]), 400)["message"] == "the body must be a JSON object"
    assert (
        error(admin.post(f"{API}/endpoints", content=b"x" * 70_000), 413)["type"] == "invalid_request_error"
    )
    assert gateway.config_path.read_bytes() == before
    after = overview(gateway)
    assert (after["routing"], sorted(by_id(after))) == (state["routing"], sorted(by_id(state)))


def test_refresh_probes_every_endpoint_now(gateway: GatewayProcess, gpus: list[Fake]) -> None:
    gpus[1].control.configure(health="unhealthy")
    checks_before = gpus[0].stats()["health_checks"]
    result = gateway.admin().post(f"{API}/refresh").json()
    assert {item["id"]: item["health"] for item in result["endpoints"]} == {
        "gpu-a": "healthy",
        "gpu-b": "unhealthy",
    }
    assert gpus[0].stats()["health_checks"] == checks_before + 1
    assert by_id(overview(gateway))["gpu-b"]["health"]["status"] == "unhealthy"


def test_create_read_update_delete(gateway: GatewayProcess, gpus: list[Fake]) -> None:
    admin = gateway.admin()
    created = admin.post(f"{API}/endpoints", json={"name": "GPU C", "url": gpus[2].url, "max_concurrency": 3})
    assert created.status_code == 201
    assert created.headers["location"] == f"{API}/endpoints/gpu-c"
    assert created.json()["id"] == "gpu-c"
    wait_for(lambda: overview(gateway), lambda s: by_id(s)["gpu-c"]["health"]["status"] == "healthy")
    assert gpus[2].stats()["health_checks"] >= 1, "a new endpoint is probed at once"
    assert admin.get(f"{API}/endpoints/gpu-c").json()["max_concurrency"] == 3

    updated = admin.patch(
        f"{API}/endpoints/gpu-c",
        json={"max_concurrency": 1, "weight": 2.5, "capabilities": ["text-to-image"]},
    )
    assert updated.status_code == 200
    assert (updated.json()["max_concurrency"], updated.json()["weight"]) == (1, 2.5)
    assert updated.json()["capabilities"] == ["text-to-image"]
    assert updated.json()["name"] == "GPU C", "a partial update keeps the rest"

    renamed = admin.patch(f"{API}/endpoints/gpu-c", json={"name": "GPU C, renamed"})
    assert renamed.json()["id"] == "gpu-c", "a new name keeps the id"
    assert admin.delete(f"{API}/endpoints/gpu-c").status_code == 204
    assert error(admin.get(f"{API}/endpoints/gpu-c"), 404)["code"] == "endpoint_not_found"
    assert sorted(by_id(overview(gateway))) == ["gpu-a", "gpu-b"]


# Each would be written in a style that reads back as something else (or not at all) by a YAML
# emitter left to itself, above all inside the {...} of a file written as JSON, like this one.
AWKWARD_NAMES = ["?GPU", "? GPU", "- GPU", "#1 GPU", "GPU: B", "GPU #2", "'GPU'", '"GPU"', "null", "12"]


def test_any_printable_name_or_key_is_written_so_it_reads_back_the_same(
    gateway_factory: StartGateway, gateway: GatewayProcess, gpus: list[Fake]
) -> None:
    admin = gateway.admin()
    for index, name in enumerate(AWKWARD_NAMES):
        body = {"id": f"odd-{index}", "name": name, "url": gpus[2].url, "api_key": f"?{SECRET}"}
        created = admin.post(f"{API}/endpoints", json=body)
        assert created.status_code == 201, created.text
    renamed = "?GPU A, renamed"
    assert admin.patch(f"{API}/endpoints/gpu-a", json={"name": renamed}).status_code == 200
    expected = {f"odd-{index}": name for index, name in enumerate(AWKWARD_NAMES)} | {"gpu-a": renamed}
    section = load_config(gateway.config_path, config_model, {}).plugins[0].config
    assert isinstance(section, SelfHostedConfig)
    keys = {endpoint.id: endpoint.key for endpoint in section.endpoints}
    assert all(keys[f"odd-{index}"] == f"?{SECRET}" for index in range(len(AWKWARD_NAMES)))
    again = gateway_factory.restart(gateway)
    names = {endpoint_id: entry["name"] for endpoint_id, entry in by_id(overview(again)).items()}
    assert names == expected | {"gpu-b": "GPU-B"}


def test_unknown_ids_are_404_and_duplicate_names_409(gateway: GatewayProcess, gpus: list[Fake]) -> None:
    admin = gateway.admin()
    assert error(admin.patch(f"{API}/endpoints/nope", json={"status": "draining"}), 404)["param"] == "id"
    assert error(admin.delete(f"{API}/endpoints/nope"), 404)["param"] == "id"
    duplicate = error(admin.post(f"{API}/endpoints", json={"name": "GPU-A", "url": gpus[2].url}), 409)
    assert (duplicate["param"], duplicate["code"]) == ("name", "duplicate_name")
    taken_id = error(
        admin.post(f"{API}/endpoints", json={"id": "gpu-b", "name": "other", "url": gpus[2].url}), 409
    )
    assert taken_id["param"] == "id"
    rename = error(admin.patch(f"{API}/endpoints/gpu-a", json={"name": "GPU-B"}), 409)
    assert rename["param"] == "name"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "", "url": "http://127.0.0.1:1"}, "name"),
        ({"name": "GPU\u009c", "url": "http://127.0.0.1:1"}, "name"),
        ({"name": "GPU\nB", "url": "http://127.0.0.1:1"}, "name"),
        ({"name": "GPU\u2028B", "url": "http://127.0.0.1:1"}, "name"),
        ({"url": "http://127.0.0.1:1"}, "name"),
        ({"name": "x", "url": "http://127.0.0.1:1", "max_concurrency": 0}, "max_concurrency"),
        ({"name": "x", "url": "http://127.0.0.1:1", "max_concurrency": 1.5}, "max_concurrency"),
        ({"name": "x", "url": "http://127.0.0.1:1", "status": "paused"}, "status"),
        ({"name": "x", "url": "http://127.0.0.1:1", "capabilities": ["motion-transfer"]}, "capabilities[0]"),
        ({"name": "x", "url": "http://127.0.0.1:1", "capabilities": []}, "capabilities"),
        (
            {"name": "x", "url": "http://127.0.0.1:1", "capabilities": ["text-to-image", "text-to-image"]},
            "capabilities",
        ),
        ({"name": "x", "url": "http://127.0.0.1:1", "weight": 0}, "weight"),
        ({"name": "x", "url": "http://127.0.0.1:1", "colour": "red"}, "colour"),
        ({"name": "x", "url": "http://127.0.0.1:1", "id": "Not An Id"}, "id"),
        ({"name": "x", "url": "http://127.0.0.1:1", "api_key": "has a space"}, "api_key"),
        ({"name": "x", "url": "http://127.0.0.1:1", "api_key": "k\u00e9y"}, "api_key"),
    ],
)
def test_endpoint_validation_is_422_naming_the_field(
    refusing: GatewayProcess, body: dict[str, Any], param: str
) -> None:
    gateway = refusing
    before = gateway.config_path.read_bytes()
    assert error(gateway.admin().post(f"{API}/endpoints", json=body), 422)["param"] == param
    assert gateway.config_path.read_bytes() == before


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "must be an http:// or https:// URL"),
        ("ftp://127.0.0.1/", "must be an http:// or https:// URL"),
        ("http://admin:hunter2@127.0.0.1:9", "must not hold credentials"),
        ("http://169.254.169.254/latest/meta-data", "link-local or cloud-metadata"),
        ("http://169.254.10.1:8080", "link-local or cloud-metadata"),
        ("http://[fe80::1]:8080", "link-local or cloud-metadata"),
        ("http://[::ffff:169.254.169.254]/", "link-local or cloud-metadata"),
        ("http://[fd00:ec2::254]/", "link-local or cloud-metadata"),
        ("http://100.100.100.200/latest/meta-data", "link-local or cloud-metadata"),
        # Host names the system resolver turns into 169.254.169.254 without asking DNS.
        ("http://2852039166:7860", "points to 169.254.169.254"),
        ("http://0xA9FEA9FE/", "points to 169.254.169.254"),
        ("http://0251.0376.0251.0376/", "points to 169.254.169.254"),
        ("http://169.254.43518/", "points to 169.254.169.254"),
        ("http://0:7860", "points to 0.0.0.0"),
        ("http://no-such-host.invalid:7860", "does not resolve"),
    ],
)
def test_endpoint_urls_are_checked(refusing: GatewayProcess, url: str, fragment: str) -> None:
    gateway = refusing
    before = gateway.config_path.read_bytes()
    refused = error(gateway.admin().post(f"{API}/endpoints", json={"name": "x", "url": url}), 422)
    assert refused["param"] == "url"
    assert fragment in refused["message"]
    assert "hunter2" not in refused["message"]
    patched = error(gateway.admin().patch(f"{API}/endpoints/gpu-a", json={"url": url}), 422)
    assert patched["param"] == "url"
    assert gateway.config_path.read_bytes() == before
    assert sorted(by_id(overview(gateway))) == ["gpu-a", "gpu-b"]


def test_allowed_networks_must_contain_every_resolved_address(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    gateway = start(gateway_factory, cloud, [endpoint(gpus[0], "gpu-a")], allowed_networks=["127.0.0.0/8"])
    admin = gateway.admin()
    assert (
        admin.post(f"{API}/endpoints", json={"name": "local", "url": "http://localhost:9"}).status_code == 201
    )
    outside = error(
        admin.post(f"{API}/endpoints", json={"name": "remote", "url": "http://10.1.2.3:7860"}), 422
    )
    assert "outside allowed_networks" in outside["message"]


def test_keys_are_write_only_everywhere(gateway_factory: StartGateway, cloud: Fake, tmp_path: Path) -> None:
    keyed = start_fake("gpu", tmp_path, "keyed-gpu", "--api-key", SECRET)
    try:
        gateway = start(gateway_factory, cloud, [], percentage=100)
        admin = gateway.admin()
        responses = [
            admin.post(f"{API}/endpoints", json={"name": "Keyed", "url": keyed.url, "api_key": SECRET})
        ]
        wait_for(lambda: overview(gateway), lambda s: by_id(s)["keyed"]["health"]["status"] == "healthy")
        responses.append(admin.patch(f"{API}/endpoints/keyed", json={"api_key": "********", "weight": 2}))
        responses += [admin.get(API), admin.get(f"{API}/endpoints/keyed"), admin.post(f"{API}/refresh")]
        responses.append(gateway.client().post("/v1/images/generations", json={"prompt": "x"}))
        assert responses[-1].headers["x-gateway-route"] == "selfhosted/keyed", (
            "the placeholder kept the stored key"
        )
        responses.append(
            admin.patch(
                f"{API}/endpoints/keyed", json={"url": f"http://localhost:{keyed.url.rsplit(':', 1)[1]}"}
            )
        )
        assert error(responses[-1], 422)["param"] == "api_key", "a new URL needs the key again"
        responses.append(
            admin.patch(
                f"{API}/endpoints/keyed",
                json={"url": keyed.url.replace("127.0.0.1", "localhost"), "api_key": SECRET},
            )
        )
        assert responses[-1].status_code == 200
        responses += [gateway.client().get("/admin"), gateway.client().get("/admin/app.js")]
        assert by_id(overview(gateway))["keyed"]["api_key"] == "********"

        for response in responses:
            assert SECRET not in response.text
            assert SECRET[-8:] not in response.text
        audit = (gateway.config_path.parent / "audit.log").read_text()
        assert SECRET not in audit
        assert '"api_key":[null,"********"]' in audit
        gateway.stop()
        assert SECRET not in gateway.process.stdout() + gateway.process.stderr()
        assert SECRET in gateway.config_path.read_text(), "a key set through the API is stored in the file"
        assert stat.S_IMODE(os.stat(gateway.config_path).st_mode) == 0o600
    finally:
        keyed.process.stop()


def test_a_stale_if_match_is_412_and_changes_nothing(gateway: GatewayProcess) -> None:
    admin = gateway.admin()
    etag = admin.get(API).headers["etag"]
    first = admin.put(f"{API}/routing", json={"routing_percentage": 10}, headers={"If-Match": etag})
    assert first.status_code == 200
    assert first.headers["etag"] != etag
    stale = admin.put(f"{API}/routing", json={"routing_percentage": 90}, headers={"If-Match": etag})
    assert error(stale, 412)["code"] == "etag_mismatch"
    assert (
        error(admin.delete(f"{API}/endpoints/gpu-a", headers={"If-Match": etag}), 412)["type"]
        == "precondition_failed"
    )
    assert overview(gateway)["routing"]["routing_percentage"] == 10
    fresh = admin.put(
        f"{API}/routing", json={"routing_percentage": 90}, headers={"If-Match": first.headers["etag"]}
    )
    assert fresh.status_code == 200
    assert (
        admin.put(f"{API}/routing", json={"routing_percentage": 5}, headers={"If-Match": "*"}).status_code
        == 200
    )


def test_every_change_appends_one_audit_line(gateway: GatewayProcess, gpus: list[Fake]) -> None:
    admin = gateway.admin()
    admin.put(f"{API}/routing", json={"routing_percentage": 30}, headers={"X-Request-Id": "audit-1"})
    admin.post(f"{API}/endpoints", json={"name": "GPU C", "url": gpus[2].url})
    admin.patch(f"{API}/endpoints/gpu-c", json={"status": "draining"})
    admin.delete(f"{API}/endpoints/gpu-c")
    admin.put(f"{API}/routing", json={"routing_percentage": 140})  # refused: no line
    lines = [json.loads(line) for line in (gateway.config_path.parent / "audit.log").read_text().splitlines()]
    assert [(line["action"], line["target"]) for line in lines] == [
        ("routing.update", "selfhosted/routing"),
        ("endpoint.create", "selfhosted/endpoints/gpu-c"),
        ("endpoint.update", "selfhosted/endpoints/gpu-c"),
        ("endpoint.delete", "selfhosted/endpoints/gpu-c"),
    ]
    assert lines[0]["changes"] == {"routing_percentage": [0.0, 30.0]}
    assert lines[0]["request_id"] == "audit-1"
    assert lines[2]["changes"] == {"status": ["active", "draining"]}
    assert all(isinstance(line["time"], float) and line["client"] == "127.0.0.1" for line in lines)


def test_the_admin_api_needs_the_token(gateway: GatewayProcess) -> None:
    anonymous = gateway.client()
    for method, path in [
        ("GET", API),
        ("PUT", f"{API}/routing"),
        ("POST", f"{API}/refresh"),
        ("POST", f"{API}/endpoints"),
        ("GET", f"{API}/endpoints/gpu-a"),
        ("PATCH", f"{API}/endpoints/gpu-a"),
        ("DELETE", f"{API}/endpoints/gpu-a"),
        ("GET", "/api/v1/admin/openapi.json"),
    ]:
        response = anonymous.request(method, path, json={} if method in ("PUT", "POST", "PATCH") else None)
        assert error(response, 401)["type"] == "authentication_error", (method, path)
    assert len(overview(gateway)["endpoints"]) == 2


def test_without_a_token_configured_the_admin_api_is_403(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]
) -> None:
    config = gateway_config(cloud, [endpoint(gpus[0], "gpu-a")])
    del config["admin"]
    gateway = gateway_factory(config)
    response = gateway.client().get(API, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert "set admin.token in gateway.yaml" in error(response, 403)["message"]


def test_the_runtime_figures_show_what_the_process_holds(gateway: GatewayProcess) -> None:
    assert gateway.client().get("/api/v1/admin/runtime").status_code == 401
    for _ in range(3):
        assert gateway.client().post("/v1/images/generations", json={"prompt": "x"}).status_code == 200
    figures = gateway.admin().get("/api/v1/admin/runtime").json()
    connections = figures["upstream_connections"]
    assert connections["max"] == 1024, "cloud.max_connections, by default"
    assert 1 <= connections["idle"] <= connections["open"] <= 3, "kept alive for reuse, not one per request"
    assert figures["tasks"] >= 1
    assert 10 * 2**20 < figures["rss_bytes"] < 1024 * 2**20
    assert figures["uptime_seconds"] > 0


def test_the_openapi_document_describes_every_route(gateway: GatewayProcess) -> None:
    document = gateway.admin().get("/api/v1/admin/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/admin/runtime",
        API,
        f"{API}/routing",
        f"{API}/refresh",
        f"{API}/endpoints",
        f"{API}/endpoints/{{endpoint_id}}",
    }
    assert set(paths[f"{API}/endpoints/{{endpoint_id}}"]) == {"parameters", "get", "patch", "delete"}
    assert paths[f"{API}/routing"]["put"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RoutingUpdate"
    }
    routing = document["components"]["schemas"]["RoutingUpdate"]["properties"]["routing_percentage"]
    assert {"minimum": 0, "maximum": 100}.items() <= next(
        s for s in routing["anyOf"] if s.get("type") == "number"
    ).items()
