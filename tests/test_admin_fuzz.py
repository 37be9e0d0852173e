"""Fuzzing the admin API from its own OpenAPI document: no input makes it fail, and a rejected request
changes nothing (schemathesis generates valid and invalid requests for every operation)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.support.selfhosted import all_healthy, configured_endpoints, endpoint, gateway_config, wait_for
from tests.support.stack import ADMIN_TOKEN, Fake, GatewayProcess, start_gateway

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))  # per operation


@pytest.fixture(scope="module")
def fuzzed_gateway(
    tmp_path_factory: pytest.TempPathFactory, _cloud_process: Fake, _gpu_processes: list[Fake]
) -> Iterator[GatewayProcess]:
    gpus = _gpu_processes
    config = gateway_config(_cloud_process, [endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")])
    gateway = start_gateway(config, tmp_path_factory.mktemp("fuzz"), "fuzzed")
    wait_for(lambda: gateway.admin().get("/api/v1/admin/selfhosted").json(), all_healthy)
    yield gateway
    gateway.stop()
    log = gateway.process.stderr()
    assert "Traceback" not in log, log


def test_no_request_makes_the_admin_api_fail(fuzzed_gateway: GatewayProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_gateway.url}/api/v1/admin/openapi.json", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) == 8
    statuses: Counter[str] = Counter()
    for operation in operations:
        fuzz(operation, fuzzed_gateway, statuses)
    for label in ("PUT /routing", "POST /endpoints", "PATCH /endpoints/{endpoint_id}"):
        assert statuses[f"{label} 2xx"] > 0, f"no valid {label} was generated: {statuses}"
        assert statuses[f"{label} 4xx"] > 0, f"no invalid {label} was generated: {statuses}"


def steered(operation: Any, gateway: GatewayProcess) -> Any:
    """Generated cases, half of them pointed at things that exist (an endpoint id, a loopback URL
    that resolves), so the fuzzer also reaches the code behind the 404 and DNS checks."""
    port = gateway.url.rsplit(":", 1)[1]
    known = st.tuples(
        st.sampled_from(["gpu-a", "gpu-b"]),
        st.sampled_from([f"http://127.0.0.1:{port}", "http://localhost:9"]),
    )
    return st.tuples(operation.as_strategy(), st.none() | known).map(_steer)


def _steer(drawn: tuple[Any, tuple[str, str] | None]) -> Any:
    case, known = drawn
    if known is not None:
        endpoint_id, url = known
        if case.path_parameters and "endpoint_id" in case.path_parameters:
            case.path_parameters["endpoint_id"] = endpoint_id
        if isinstance(case.body, dict) and "url" in case.body:
            case.body["url"] = url
    return case


def fuzz(operation: Any, gateway: GatewayProcess, statuses: Counter[str]) -> None:
    @given(case=steered(operation, gateway))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        before, running = gateway.config_path.read_bytes(), configured(gateway)
        response = case.call(base_url=gateway.url, headers=AUTH, timeout=30)
        path = case.path.removeprefix("/api/v1/admin/selfhosted") or "/"
        statuses[f"{case.method} {path} {response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:
            assert gateway.config_path.read_bytes() == before, (
                f"a rejected {case.method} {case.path} changed gateway.yaml"
            )
            assert configured(gateway) == running, (
                f"a rejected {case.method} {case.path} changed the running configuration"
            )

    run()


def configured(gateway: GatewayProcess) -> dict[str, Any]:
    """What the running plugin is configured with, as the overview shows it (no telemetry)."""
    state = gateway.admin().get("/api/v1/admin/selfhosted").json()
    return {
        "routing": state["routing"],
        "settings": state["settings"],
        "endpoints": configured_endpoints(state),
    }
