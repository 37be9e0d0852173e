"""Traces: a server span per request, client spans for upstream calls, and no secret in any of them."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import StartGateway
from tests.support.stack import ADMIN_TOKEN, Fake

CLOUD_KEY = "sk-cloud-SECRET-4f9a1c"
CLIENT_KEY = "sk-client-SECRET-77b2e0"
PROMPT = "PROMPT-SECRET a watercolour of a harbour"
QUERY_KEY = "QUERY-SECRET-9d1e"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def spans_in(output: str) -> list[dict[str, Any]]:
    """The console exporter prints one JSON object per span; collect them all."""
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (start := output.find("{", index)) != -1:
        try:
            span, index = decoder.raw_decode(output, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(span, dict) and "context" in span and "kind" in span:
            spans.append(span)
    return spans


def test_spans_connect_and_carry_no_secret(gateway_factory: StartGateway, cloud: Fake) -> None:
    gateway = gateway_factory(
        {
            "cloud": {"base_url": cloud.url, "api_key": CLOUD_KEY},
            "admin": {"token": ADMIN_TOKEN},
            "telemetry": {"exporter": "console", "service_name": "gateway-under-test"},
        }
    )
    response = gateway.client().post(
        f"/v1/images/generations?api_key={QUERY_KEY}",
        json={"prompt": PROMPT},
        headers={
            "Authorization": f"Bearer {CLIENT_KEY}",
            "Cookie": "session=COOKIE-SECRET",
            "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
        },
    )
    assert response.status_code == 200
    gateway.admin().get("/api/v1/health")
    upstream_headers = dict(cloud.stats()["recent"][-1]["headers"])
    gateway.stop()

    output = gateway.process.stdout() + gateway.process.stderr()
    for secret in (CLOUD_KEY, CLIENT_KEY, PROMPT, "PROMPT-SECRET", QUERY_KEY, ADMIN_TOKEN, "COOKIE-SECRET"):
        assert secret not in output, f"{secret!r} leaked into a span or a log line"

    spans = spans_in(gateway.process.stdout())
    server = next(
        span
        for span in spans
        if span["kind"] == "SpanKind.SERVER" and span["attributes"]["url.path"] == "/v1/images/generations"
    )
    client = next(span for span in spans if span["kind"] == "SpanKind.CLIENT")
    assert server["attributes"]["gateway.route"] == "cloud"
    assert server["attributes"]["http.response.status_code"] == 200
    assert server["attributes"]["gateway.request_id"] == response.headers["x-request-id"]
    assert server["resource"]["attributes"]["service.name"] == "gateway-under-test"
    assert server["context"]["trace_id"] == f"0x{TRACE_ID}", "the client's trace continues"
    assert client["parent_id"] == server["context"]["span_id"]
    assert upstream_headers["traceparent"].split("-")[1] == TRACE_ID, "the trace reaches the upstream"
