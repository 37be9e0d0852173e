"""The ``/_fake/`` control routes: stats, live reconfiguration and reset.

They bypass faults, latency, the API key and the counters, so a test can always see and steer
a fake, however broken it has been told to be.
"""

from __future__ import annotations

import json

from loadtests.fakes.connection import Connection
from loadtests.fakes.messages import (
    RequestHead,
    Response,
    error_response,
    invalid_request,
    json_response,
    method_not_allowed,
    not_found,
)
from loadtests.fakes.state import FakeState

PREFIX = "/_fake/"
_METHODS = {"stats": "GET", "config": "POST", "reset": "POST"}


async def handle_admin(state: FakeState, head: RequestHead, exchange: Connection) -> None:
    exchange.mark_admin()
    body = await exchange.read_body()
    asking_counted = exchange.on_main and exchange.counts_as_open
    await exchange.send(await _answer(state, head, body, asking_counted))


async def _answer(state: FakeState, head: RequestHead, body: bytes, asking_counted: bool) -> Response:
    action = head.path.removeprefix(PREFIX)
    expected = _METHODS.get(action)
    if expected is None:
        return not_found(head.path)
    if head.method != expected and not (expected == "GET" and head.method == "HEAD"):
        return method_not_allowed(head.method, head.path, expected)
    if action == "config":
        return await _configure(state, body)
    if action == "reset":
        state.reset()
    return json_response(200, state.stats_json(asking_counted))


async def _configure(state: FakeState, body: bytes) -> Response:
    try:
        patch = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return invalid_request(f"config body is not valid JSON: {exc}")
    if not isinstance(patch, dict):
        return invalid_request("config body must be a JSON object")
    try:
        config = await state.configure(patch)
    except ValueError as exc:
        return invalid_request(str(exc))
    except OSError as exc:
        # The config is applied, but the main port could not be reopened (someone took it).
        return error_response(500, f"cannot reopen the main port: {exc}", "server_error")
    return json_response(200, config.to_json())
