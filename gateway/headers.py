"""Header hygiene for both directions of the proxy, as pure functions over ASGI header lists.

RFC 9110 section 7.6.1: hop-by-hop headers, and every header named in ``Connection``, describe one
connection and must not be forwarded. ``Host`` is the upstream's own; the client's original host,
scheme and address travel as ``X-Forwarded-*`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Header = tuple[bytes, bytes]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# Set by the gateway itself on the way up; a client's own value must not survive.
_REPLACED_UPSTREAM = frozenset(
    {b"host", b"expect", b"x-request-id", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-for"}
)
# Set by the gateway on the way down (uvicorn adds Date; the gateway adds its id and route).
_REPLACED_DOWNSTREAM = frozenset({b"date", b"x-gateway-route"})


def connection_tokens(headers: Iterable[Header]) -> frozenset[bytes]:
    """Lower-cased header names listed in every ``Connection`` header."""
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return frozenset(names)


def strip_hop_by_hop(headers: Iterable[Header], also: frozenset[bytes] = frozenset()) -> list[Header]:
    headers = list(headers)
    drop = HOP_BY_HOP | connection_tokens(headers) | also
    return [(name, value) for name, value in headers if name.lower() not in drop]


def upstream_headers(
    headers: Sequence[Header],
    *,
    request_id: str,
    client_host: str | None,
    scheme: str,
    drop: frozenset[bytes] = frozenset(),
    extra: Sequence[Header] = (),
) -> list[Header]:
    """The headers to send upstream for a client request carrying ``headers``.

    ``drop`` removes credentials the upstream must not see; ``extra`` adds the upstream's own.
    """
    forwarded_for = b", ".join(value for name, value in headers if name.lower() == b"x-forwarded-for")
    host = next((value for name, value in headers if name.lower() == b"host"), b"")
    result = strip_hop_by_hop(headers, _REPLACED_UPSTREAM | drop)
    if client_host:
        client = client_host.encode("latin-1")
        forwarded_for = forwarded_for + b", " + client if forwarded_for else client
    if forwarded_for:
        result.append((b"x-forwarded-for", forwarded_for))
    result.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    if host:
        result.append((b"x-forwarded-host", host))
    result.append((b"x-request-id", request_id.encode("latin-1")))
    result.extend(extra)
    return result


def downstream_headers(headers: Iterable[Header]) -> list[Header]:
    """The headers to send to the client for an upstream response carrying ``headers``.

    The upstream's own request id is kept as ``x-upstream-request-id``: the client's id belongs to
    the gateway's ``x-request-id``, and the provider's id is what its support desk asks for.
    """
    result: list[Header] = []
    for name, value in strip_hop_by_hop(headers, _REPLACED_DOWNSTREAM):
        if name.lower() == b"x-request-id":
            result.append((b"x-upstream-request-id", value))
        else:
            result.append((name, value))
    return result


def bearer(secret: str) -> Header:
    return (b"authorization", b"Bearer " + secret.encode("latin-1"))
