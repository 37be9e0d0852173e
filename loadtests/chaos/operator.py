"""The admin during the soak: one change every ``period`` seconds, through REST or by editing the file.

Changes are made one at a time, each REST change with ``If-Match`` from a fresh GET, and each hand
edit is waited for until the gateway has adopted (or, for the typo, refused) it, so no change
overwrites another. Every answer is checked; anything unexpected is a problem of the run. The
largest ``max_concurrency`` each endpoint ever had is kept: no endpoint may ever exceed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from ruamel.yaml import YAML

API = "/api/v1/admin/selfhosted"
ADOPT_TIMEOUT = 15.0
ADDED = "gpu-d"
ACTIONS = (
    "routing",
    "max_concurrency",
    "create",
    "drain",
    "refresh",
    "hand edit",
    "undrain",
    "delete",
    "refused hand edit",
)
"""What the operator does, in this order, over and over."""


@dataclass(frozen=True)
class LimitChange:
    asked: float
    """When the PATCH was sent (monotonic, the clock the simulated endpoints stamp requests with)."""
    answered: float
    """When its 200 came back: the gateway applies a change before it answers."""
    limit: int


class Operator:
    def __init__(
        self,
        gateway_url: str,
        token: str,
        config_path: Path,
        *,
        spare_url: str,
        limits: dict[str, int],
        period: float,
    ) -> None:
        self.config_path = config_path
        self.spare_url = spare_url
        self.limits = limits
        """Endpoint id: the largest max_concurrency it has had."""
        self.period = period
        self.http = httpx.AsyncClient(
            base_url=gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )
        self.done: Counter[str] = Counter()
        self.problems: list[str] = []
        self.changes = 0
        """Successful changes through the REST API: each must have left one audit line."""
        self.concurrency_changes: list[LimitChange] = []
        """gpu-c's max_concurrency changes, in order, with when they were asked for and answered."""
        self._flip = 0
        steps = (
            self.routing,
            self.concurrency,
            self.create,
            self.drain,
            self.refresh,
            self.hand_edit,
            self.undrain,
            self.delete,
            self.refused_hand_edit,
        )
        self._actions: list[tuple[str, Callable[[], Awaitable[None]]]] = list(
            zip(ACTIONS, steps, strict=True)
        )

    def __repr__(self) -> str:
        return f"<Operator done={sum(self.done.values())} problems={len(self.problems)}>"

    async def run(self, stop: asyncio.Event) -> None:
        turn = 0
        try:
            while not stop.is_set():
                name, action = self._actions[turn % len(self._actions)]
                turn += 1
                try:
                    await action()
                except (httpx.HTTPError, TimeoutError, ValueError, KeyError) as error:
                    self.problems.append(f"admin {name}: {type(error).__name__}: {error}")
                else:
                    self.done[name] += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.period)
        finally:
            await self.restore()

    async def restore(self) -> None:
        """Leave the fleet as it started: gpu-b active, the added endpoint gone."""
        try:
            state = await self.overview()
            ids = {endpoint["id"]: endpoint for endpoint in state["endpoints"]}
            if ids.get("gpu-b", {}).get("status") == "draining":
                await self.undrain()
            if ADDED in ids:
                await self.delete()
        finally:
            await self.http.aclose()

    # -- the actions ---------------------------------------------------------------------------

    async def routing(self) -> None:
        self._flip += 1
        percentage = (70, 100, 85)[self._flip % 3]
        await self._change("PUT", f"{API}/routing", {"routing_percentage": percentage}, 200)

    async def concurrency(self) -> None:
        state = await self.overview()
        current = {e["id"]: e for e in state["endpoints"]}["gpu-c"]["max_concurrency"]
        wanted = 3 if current == 4 else 4
        self.limits["gpu-c"] = max(self.limits["gpu-c"], wanted)
        asked = time.monotonic()
        await self._change("PATCH", f"{API}/endpoints/gpu-c", {"max_concurrency": wanted}, 200)
        self.concurrency_changes.append(LimitChange(asked, time.monotonic(), wanted))

    async def create(self) -> None:
        body = {
            "id": ADDED,
            "name": "GPU D",
            "url": self.spare_url,
            "max_concurrency": self.limits[ADDED],
            "capabilities": ["text-to-image", "image-to-image"],
        }
        await self._change("POST", f"{API}/endpoints", body, 201)

    async def drain(self) -> None:
        await self._change("PATCH", f"{API}/endpoints/gpu-b", {"status": "draining"}, 200)

    async def undrain(self) -> None:
        await self._change("PATCH", f"{API}/endpoints/gpu-b", {"status": "active"}, 200)

    async def delete(self) -> None:
        await self._change("DELETE", f"{API}/endpoints/{ADDED}", None, 204)

    async def refresh(self) -> None:
        response = await self.http.post(f"{API}/refresh")
        _expect(response, 200)

    async def hand_edit(self) -> None:
        """An operator's editor: the whole file read, one value changed, the file replaced."""
        document = _yaml().load(self.config_path.read_text())
        endpoint = next(e for e in document["plugins"][0]["config"]["endpoints"] if e["id"] == "gpu-a")
        weight = 3 if endpoint.get("weight", 1) == 1 else 1
        endpoint["weight"] = weight
        _replace(self.config_path, _dump(document))
        await self._until(
            lambda state: {e["id"]: e for e in state["endpoints"]}["gpu-a"]["weight"] == weight,
            "the hand edit of gpu-a's weight was not adopted",
        )

    async def refused_hand_edit(self) -> None:
        """A typo in the file: refused and shown, the running configuration kept, then fixed."""
        good = self.config_path.read_text()
        before = (await self.overview())["routing"]["routing_percentage"]
        document = _yaml().load(good)
        document["plugins"][0]["config"]["routing"]["routing_percentage"] = 140
        _replace(self.config_path, _dump(document))
        state = await self._until(
            lambda state: state["config_error"] is not None, "the typo in gateway.yaml was not reported"
        )
        if state["routing"]["routing_percentage"] != before:
            raise ValueError("the refused edit changed the running configuration")
        _replace(self.config_path, good)
        await self._until(lambda state: state["config_error"] is None, "the fixed file was not adopted")

    # -- plumbing ------------------------------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        response = await self.http.get(API)
        _expect(response, 200)
        state: dict[str, Any] = response.json()
        return state

    async def _change(self, method: str, path: str, body: dict[str, Any] | None, status: int) -> None:
        etag = (await self.http.get(API)).headers["etag"]
        response = await self.http.request(method, path, json=body, headers={"If-Match": etag})
        _expect(response, status)
        self.changes += 1

    async def _until(self, done: Callable[[dict[str, Any]], bool], failure: str) -> dict[str, Any]:
        deadline = time.monotonic() + ADOPT_TIMEOUT
        while not done(state := await self.overview()):
            if time.monotonic() > deadline:
                raise TimeoutError(failure)
            await asyncio.sleep(0.1)
        return state


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise ValueError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} (expected {status}): {response.text[:300]}"
        )


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    return yaml


def _dump(document: Any) -> str:
    out = io.StringIO()
    _yaml().dump(document, out)
    return out.getvalue()


def _replace(path: Path, text: str) -> None:
    """Write like an editor that saves atomically: a new file renamed over the old one."""
    temporary = path.with_name(f".{path.name}.edit")
    temporary.write_text(text)
    os.replace(temporary, path)
