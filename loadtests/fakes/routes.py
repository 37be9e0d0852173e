"""The API routes of a fake: pure functions from a read request to a response.

Faults, latency, the API key and stats are applied around these by ``upstream``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any

from loadtests.fakes.body import pattern_bytes
from loadtests.fakes.config import Kind
from loadtests.fakes.images import images_body
from loadtests.fakes.messages import (
    Headers,
    RequestHead,
    Response,
    invalid_request,
    json_response,
    method_not_allowed,
    not_found,
)
from loadtests.fakes.multipart import FormPart, parse_form

MAX_IMAGES = 10
SET_HEADERS = "x-fake-set-headers"
# Framing is h11's job; a second Content-Length or a non-chunked Transfer-Encoding would corrupt it.
_UNSETTABLE = frozenset({"content-length", "transfer-encoding"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclasses.dataclass(frozen=True)
class ApiRequest:
    """A fully read API request and what the fake was told about its answer."""

    head: RequestHead
    body: bytes
    now: float
    response_bytes: int | None = None


Endpoint = Callable[[ApiRequest], Response]


@dataclasses.dataclass(frozen=True)
class Route:
    """``path`` (and, if ``subpaths``, anything under it) answered by ``endpoint`` for ``methods``."""

    methods: frozenset[str] | None
    path: str
    endpoint: Endpoint
    subpaths: bool = False
    label: str | None = None

    @property
    def key(self) -> str:
        """How the route is named in ``by_route``: its label (e.g. ``/bytes/{n}``), else its path."""
        return self.label or self.path

    def matches(self, path: str) -> bool:
        return path == self.path or (self.subpaths and path.startswith(self.path + "/"))


def api_routes(kind: Kind) -> tuple[Route, ...]:
    post = frozenset({"POST"})
    routes = [
        Route(post, "/v1/images/generations", generations),
        Route(post, "/v1/images/edits", edits),
        Route(None, "/echo", echo, subpaths=True),
        Route(frozenset({"GET", "HEAD"}), "/bytes", stream_bytes, subpaths=True, label="/bytes/{n}"),
    ]
    if kind is Kind.CLOUD:
        routes.append(Route(post, "/v1/videos/motion-transfer", motion_transfer))
    return tuple(routes)


def resolve(routes: tuple[Route, ...], head: RequestHead) -> tuple[str, Endpoint]:
    """The ``by_route`` key and the endpoint for ``head``, including the 404 and 405 answers."""
    route = next((candidate for candidate in routes if candidate.matches(head.path)), None)
    if route is None:
        return f"{head.method} (unmatched)", lambda _: not_found(head.path)
    key = f"{head.method} {route.key}"
    if route.methods is not None and head.method not in route.methods:
        allowed = ", ".join(sorted(route.methods))
        return key, lambda _: method_not_allowed(head.method, head.path, allowed)
    return key, route.endpoint


def generations(request: ApiRequest) -> Response:
    try:
        document = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return invalid_request(f"request body is not valid JSON: {exc}")
    if not isinstance(document, dict):
        return invalid_request("request body must be a JSON object")
    prompt = document.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return invalid_request("'prompt' is required and must be a non-empty string", "prompt")
    count = _image_count(document.get("n", 1))
    if count is None:
        return invalid_request(f"'n' must be an integer from 1 to {MAX_IMAGES}", "n")
    return _images(request, prompt.encode(), count)


def edits(request: ApiRequest) -> Response:
    try:
        parts = parse_form(request.head.header("content-type") or "", request.body)
    except ValueError as exc:
        return invalid_request(str(exc))
    images = [part for part in parts if part.name in {"image", "image[]"} and part.content]
    if not images:
        return invalid_request("'image' (or 'image[]') is required", "image")
    prompt = _text_field(parts, "prompt")
    if not prompt:
        return invalid_request("'prompt' is required", "prompt")
    count = _image_count(_text_field(parts, "n") or 1)
    if count is None:
        return invalid_request(f"'n' must be an integer from 1 to {MAX_IMAGES}", "n")
    seed = prompt.encode() + b"".join(hashlib.sha256(part.content).digest() for part in images)
    return _images(request, seed, count)


def motion_transfer(request: ApiRequest) -> Response:
    job = {"id": f"mt_{secrets.token_hex(12)}", "object": "video.motion_transfer", "status": "queued"}
    return json_response(200, job)


def echo(request: ApiRequest) -> Response:
    """The request as received; ``x-fake-set-headers`` adds response headers, sent verbatim."""
    try:
        extra = _set_headers(request.head.header(SET_HEADERS))
    except ValueError as exc:
        return invalid_request(str(exc), SET_HEADERS)
    head = request.head
    document = {
        "method": head.method,
        "path": head.path,
        "query": head.query,
        "headers": [[name, value] for name, value in head.headers],
        "body_sha256": hashlib.sha256(request.body).hexdigest(),
        "body_bytes": len(request.body),
    }
    return json_response(200, document, extra)


def stream_bytes(request: ApiRequest) -> Response:
    """``GET /bytes/<n>``: n pattern bytes, generated piece by piece; ``?chunked=1`` for chunked."""
    text = request.head.path.removeprefix("/bytes/")
    if not text.isdigit():
        return invalid_request("expected /bytes/<n> with n a non-negative integer")
    body = pattern_bytes(int(text))
    query = urllib.parse.parse_qs(request.head.query)
    if query.get("chunked", ["0"])[-1] in {"1", "true", "yes"}:
        body = body.unsized()
    return Response(200, [("Content-Type", "application/octet-stream")], body)


def _images(request: ApiRequest, seed: bytes, count: int) -> Response:
    seeds = [seed + b"\x00%d" % index for index in range(count)]
    body = images_body(seeds, int(request.now), request.response_bytes)
    return Response(200, [("Content-Type", "application/json")], body)


def _image_count(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IMAGES:
        return None
    return value


def _text_field(parts: list[FormPart], name: str) -> str | None:
    return next((part.text for part in parts if part.name == name and part.filename is None), None)


def _set_headers(raw: str | None) -> Headers:
    if raw is None:
        return []
    try:
        pairs = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{SET_HEADERS} is not valid JSON: {exc}") from None
    if not isinstance(pairs, list):
        raise ValueError(f"{SET_HEADERS} must be a JSON list of [name, value] pairs")
    return [_header_pair(pair) for pair in pairs]


def _header_pair(pair: object) -> tuple[str, str]:
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(item, str) for item in pair)):
        raise ValueError(f"{SET_HEADERS} items must be [name, value] string pairs, got {pair!r}")
    name, value = pair
    if not _TOKEN.fullmatch(name) or any(char in value for char in "\r\n\x00"):
        raise ValueError(f"invalid header {name!r}: {value!r}")
    if name.lower() in _UNSETTABLE:
        raise ValueError(f"{name} cannot be set: the fake frames its own bodies")
    return name, value
