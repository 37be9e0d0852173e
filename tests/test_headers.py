"""gateway/headers.py: hop-by-hop hygiene in both directions."""

from __future__ import annotations

from gateway.headers import bearer, connection_tokens, downstream_headers, upstream_headers


def names(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [name for name, _ in headers]


def test_connection_tokens_cover_every_connection_header() -> None:
    headers = [(b"Connection", b"keep-alive, X-Hop"), (b"connection", b" x-other ,"), (b"x-hop", b"1")]
    assert connection_tokens(headers) == {b"keep-alive", b"x-hop", b"x-other"}


def test_upstream_headers_strip_hop_by_hop_and_set_forwarding() -> None:
    client = [
        (b"host", b"gateway.test:8080"),
        (b"connection", b"x-hop"),
        (b"x-hop", b"secret-hop"),
        (b"keep-alive", b"timeout=5"),
        (b"te", b"trailers"),
        (b"trailer", b"x-t"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"h2c"),
        (b"proxy-authorization", b"Basic abc"),
        (b"expect", b"100-continue"),
        (b"x-request-id", b"client-sent"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-forwarded-proto", b"forged"),
        (b"authorization", b"Bearer client"),
        (b"content-type", b"application/json"),
    ]
    result = upstream_headers(client, request_id="rid-1", client_host="127.0.0.1", scheme="http")
    assert result == [
        (b"authorization", b"Bearer client"),
        (b"content-type", b"application/json"),
        (b"x-forwarded-for", b"10.0.0.1, 127.0.0.1"),
        (b"x-forwarded-proto", b"http"),
        (b"x-forwarded-host", b"gateway.test:8080"),
        (b"x-request-id", b"rid-1"),
    ]


def test_upstream_headers_drop_credentials_and_add_the_upstreams_own() -> None:
    client = [(b"authorization", b"Bearer client"), (b"cookie", b"session=1"), (b"accept", b"*/*")]
    result = upstream_headers(
        client,
        request_id="r",
        client_host=None,
        scheme="https",
        drop=frozenset({b"authorization", b"cookie"}),
        extra=(bearer("gpu-key"),),
    )
    assert result == [
        (b"accept", b"*/*"),
        (b"x-forwarded-proto", b"https"),
        (b"x-request-id", b"r"),
        (b"authorization", b"Bearer gpu-key"),
    ]


def test_downstream_headers_keep_end_to_end_and_rename_upstream_id() -> None:
    upstream = [
        (b"content-type", b"application/json"),
        (b"content-length", b"12"),
        (b"connection", b"close, x-hop"),
        (b"x-hop", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-authenticate", b"Basic"),
        (b"date", b"Thu, 01 Jan 2026 00:00:00 GMT"),
        (b"x-gateway-route", b"forged"),
        (b"x-request-id", b"req_abc"),
        (b"retry-after", b"3"),
    ]
    assert downstream_headers(upstream) == [
        (b"content-type", b"application/json"),
        (b"content-length", b"12"),
        (b"x-upstream-request-id", b"req_abc"),
        (b"retry-after", b"3"),
    ]
    assert b"x-hop" not in names(downstream_headers(upstream))
