"""The fault scheduler: every ``period`` seconds the next fault of the catalogue goes to the next GPU.

A fault lasts ``hold`` seconds (two periods), so at most two of the three GPUs misbehave at once
and faults overlap and hand over to each other. The order is a seeded shuffle of the whole
catalogue, repeated, so a run long enough injects every fault on every GPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from loadtests.fakes import FakeControl

API_FAULTS = (
    "refuse",
    "hang",
    "slow_headers",
    "500",
    "502",
    "503",
    "504",
    "429",
    "reset",
    "reset_mid_body",
    "truncated_json",
    "slow_body",
)
HEALTH_FAULTS = ("hang", "unhealthy", "flap")
HEALTHY = {"fail": "none", "health": "ok"}


@dataclass(frozen=True)
class Fault:
    setting: str
    """``fail`` (how API requests misbehave) or ``health`` (how the probe does)."""
    mode: str

    def __str__(self) -> str:
        return f"{self.mode}" if self.setting == "fail" else f"health {self.mode}"


CATALOGUE = tuple(Fault("fail", mode) for mode in API_FAULTS) + tuple(
    Fault("health", mode) for mode in HEALTH_FAULTS
)


class FaultScheduler:
    def __init__(self, gpus: dict[str, FakeControl], *, period: float, seed: int) -> None:
        self.gpus = gpus
        self.period = period
        self.hold = 2 * period
        self.rng = random.Random(seed)
        self.applied: Counter[str] = Counter()
        self.by_gpu: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"<FaultScheduler period={self.period}s applied={sum(self.applied.values())}>"

    async def run(self, stop: asyncio.Event) -> None:
        names = list(self.gpus)
        until: dict[str, float] = {}
        order: list[Fault] = []
        turn = 0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                now = loop.time()
                for name in [name for name, end in until.items() if end <= now]:
                    del until[name]
                    await self._set(name, HEALTHY)
                name = names[turn % len(names)]
                turn += 1
                if name not in until:
                    if not order:
                        order = self.rng.sample(CATALOGUE, len(CATALOGUE))
                    fault = order.pop()
                    await self._set(name, {**HEALTHY, fault.setting: fault.mode})
                    until[name] = now + self.hold
                    self.applied[str(fault)] += 1
                    self.by_gpu[name] += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.period)
        finally:
            await self.heal(names)

    async def heal(self, names: Sequence[str]) -> None:
        """Every GPU back to well-behaved."""
        for name in names:
            await self._set(name, HEALTHY)

    async def _set(self, name: str, settings: dict[str, str]) -> None:
        await asyncio.to_thread(self.gpus[name].configure, **settings)
