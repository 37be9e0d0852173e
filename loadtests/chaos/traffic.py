"""The soak's clients: the official openai SDK (and plain HTTP for motion transfer), every answer checked.

Each client sends one request at a time until the run's deadline or request budget is reached. An
answer counts as received only when it is complete and what the client asked for: a 200 whose
``data[0].b64_json`` decodes to a PNG, or a motion-transfer job with an id. The SDK's own retries
are off, so every failure the gateway lets through is seen.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import openai

from loadtests.fakes.png import IEND, SIGNATURE, colour_for, solid_png_head

SOURCE_PNG = solid_png_head(colour_for(b"soak source")) + IEND
MASK_PNG = solid_png_head((0, 0, 0)) + IEND
MIX = (("text-to-image", 6), ("image-to-image", 3), ("motion-transfer", 1))
REQUEST_TIMEOUT = 60.0
FAILURE_EXAMPLES = 20


@dataclass
class Budget:
    """When clients stop sending: at ``deadline`` (monotonic) or after ``max_requests``."""

    deadline: float
    max_requests: int
    sent: int = 0

    def take(self) -> bool:
        if self.sent >= self.max_requests or time.monotonic() >= self.deadline:
            return False
        self.sent += 1
        return True


@dataclass
class Traffic:
    sent: int = 0
    received: int = 0
    failures: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def failed(self, kind: str, what: str) -> None:
        self.failures += 1
        if len(self.examples) < FAILURE_EXAMPLES:
            self.examples.append(f"{kind}: {what}")


class Clients:
    def __init__(self, gateway_url: str, clients: int, seed: int) -> None:
        self.count = clients
        self.rng = random.Random(seed)
        self.traffic = Traffic()
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        self.http = httpx.AsyncClient(base_url=gateway_url, timeout=REQUEST_TIMEOUT, limits=limits)
        self.sdk = openai.AsyncOpenAI(
            base_url=f"{gateway_url}/v1", api_key="sk-soak-client", max_retries=0, timeout=REQUEST_TIMEOUT
        )

    async def run(self, budget: Budget) -> Traffic:
        try:
            await asyncio.gather(*(self._client(budget) for _ in range(self.count)))
        finally:
            await self.http.aclose()
            await self.sdk.close()
        return self.traffic

    async def _client(self, budget: Budget) -> None:
        kinds = [kind for kind, _ in MIX]
        weights = [weight for _, weight in MIX]
        while budget.take():
            kind = self.rng.choices(kinds, weights)[0]
            self.traffic.sent += 1
            self.traffic.by_kind[kind] += 1
            started = time.monotonic()
            try:
                route = await self._send(kind)
            except (openai.APIError, httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
                self.traffic.failed(kind, f"{type(error).__name__}: {str(error)[:200]}")
                continue
            self.traffic.received += 1
            self.traffic.by_route[route.split("/")[0]] += 1
            self.traffic.latencies.append(time.monotonic() - started)

    async def _send(self, kind: str) -> str:
        """One request of ``kind``; the route that answered, or an exception saying what was wrong."""
        prompt = f"soak {self.rng.randrange(1_000_000)}"
        if kind == "motion-transfer":
            response = await self.http.post(
                "/v1/videos/motion-transfer",
                json={"video": "dance.mp4", "image": "person.png"},
                headers={"Authorization": "Bearer sk-soak-client"},
            )
            if response.status_code != 200 or not response.json().get("id"):
                raise ValueError(f"HTTP {response.status_code}: {response.text[:200]}")
            return response.headers["x-gateway-route"]
        if kind == "text-to-image":
            raw = await self.sdk.images.with_raw_response.generate(model="gpt-image-1", prompt=prompt)
        else:
            raw = await self.sdk.images.with_raw_response.edit(
                model="gpt-image-1",
                image=("source.png", SOURCE_PNG, "image/png"),
                mask=("mask.png", MASK_PNG, "image/png"),
                prompt=prompt,
            )
        data = raw.parse().data
        if not data or not data[0].b64_json:
            raise ValueError("an answer without data[0].b64_json")
        try:
            image = base64.b64decode(data[0].b64_json, validate=True)
        except binascii.Error as error:
            raise ValueError(f"data[0].b64_json is not base64: {error}") from None
        if not image.startswith(SIGNATURE):
            raise ValueError("data[0].b64_json is not a PNG")
        return raw.headers["x-gateway-route"]
