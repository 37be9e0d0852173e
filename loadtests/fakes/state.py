"""The mutable state of one fake: its config, counters, fault cycle and listener switch."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from loadtests.fakes.config import FailMode, FakeConfig, HealthMode, Kind
from loadtests.fakes.stats import RECENT_LIMIT, Stats


class Listener(Protocol):
    """The server side a fake's state can steer: refusing connections, counting them."""

    @property
    def can_refuse(self) -> bool:
        """True when a control port keeps the fake reachable while the main port is closed."""
        ...

    @property
    def open_connections(self) -> int: ...

    async def set_accepting(self, accepting: bool) -> None: ...


class FakeState:
    """Everything the routes share; one per fake, built by ``run`` and never global."""

    def __init__(
        self, kind: Kind, name: str, config: FakeConfig, listener: Listener, recent_limit: int = RECENT_LIMIT
    ) -> None:
        self.kind = kind
        self.name = name
        self.config = config
        self.stats = Stats(recent_limit)
        self.slots = _slots(config.slots)
        self._listener = listener
        self._fail_index = 0
        self._flap_index = 0

    def __repr__(self) -> str:
        fail = ",".join(self.config.fail)
        return (
            f"<FakeState {self.name} kind={self.kind} fail={fail} health={self.config.health} {self.stats!r}>"
        )

    def draw_fail(self) -> FailMode:
        """The fault mode of the next API request: the configured modes, in turn."""
        modes = self.config.fail
        mode = modes[self._fail_index % len(modes)]
        self._fail_index += 1
        return mode

    def effective(self, mode: FailMode) -> FailMode:
        """``refuse`` can only close the listener for new connections; on this one it is a reset."""
        return FailMode.RESET if mode is FailMode.REFUSE else mode

    def next_health_ok(self) -> bool:
        """Whether this probe is healthy; ``flap`` alternates, starting healthy."""
        if self.config.health is HealthMode.FLAP:
            healthy = self._flap_index % 2 == 0
            self._flap_index += 1
            return healthy
        return self.config.health is HealthMode.OK

    async def configure(self, patch: Mapping[str, Any]) -> FakeConfig:
        """Apply a JSON patch at once (``ValueError``: nothing changed) and steer the listener."""
        new = self.config.updated(patch)
        if new.fail != self.config.fail:
            self._fail_index = 0
        if new.health != self.config.health:
            self._flap_index = 0
        if new.slots != self.config.slots:
            self.slots = _slots(new.slots)  # requests already waiting keep the old gate
        self.config = new
        await self.sync_listener()
        return new

    async def sync_listener(self) -> None:
        """Close the main port while ``refuse`` is configured (if a control port exists), else open it."""
        refusing = FailMode.REFUSE in self.config.fail and self._listener.can_refuse
        await self._listener.set_accepting(not refusing)

    def reset(self) -> None:
        self.stats.reset()
        self._fail_index = 0
        self._flap_index = 0

    def stats_json(self, asking_counted: bool) -> dict[str, Any]:
        """The ``/_fake/stats`` document; ``asking_counted``: the asking connection is among the open ones."""
        document: dict[str, Any] = {"name": self.name, "kind": self.kind.value, **self.stats.to_json()}
        document["open_connections"] = self._listener.open_connections - (1 if asking_counted else 0)
        document["config"] = self.config.to_json()
        return document


def _slots(count: int | None) -> asyncio.Semaphore | None:
    """The GPU's parallel capacity as a gate; FIFO, like a GPU server's own queue."""
    return None if count is None else asyncio.Semaphore(count)
