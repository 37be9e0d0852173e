"""Concurrency tokens and the queue of requests waiting for one.

A token is one of an endpoint's ``max_concurrency`` slots. ``lease()`` takes a token on the best
endpoint with room, or waits in a FIFO queue (at most ``max_size`` waiting, each at most
``max_wait`` seconds) for the first token freed on any suitable endpoint. The bookkeeping is
synchronous and does no I/O: when a token comes back, ``hand_over`` gives it to the oldest waiter
there and then, and the waiter's future resolves; nobody polls.

A waiter whose client leaves is removed from the queue; one that was handed a token in the same
instant gives it straight back, so no token is ever lost between a hand-over and a cancellation.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.clock import Clock, Timer
from plugins.selfhosted.breaker import Permit
from plugins.selfhosted.choice import Candidate, choose, sample
from plugins.selfhosted.config import CAPABILITIES
from plugins.selfhosted.fleet import EndpointState, Fleet
from plugins.selfhosted.stats import Reason


class Verdict(enum.Enum):
    """What an attempt says about its endpoint."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"
    """No verdict: the client left, or the lease was never used."""


class NotServable(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(eq=False)
class Lease:
    """One token on one endpoint, with the circuit's permission; given back exactly once."""

    endpoint: EndpointState
    permit: Permit
    capability: str
    done: bool = False

    def __repr__(self) -> str:
        return f"<Lease {self.endpoint.id} {'returned' if self.done else 'held'}>"


@dataclass(eq=False)
class Waiter:
    capability: str
    order: int
    enqueued_at: float
    future: asyncio.Future[Lease]
    timer: Timer | None = None
    live: bool = True


@dataclass
class QueueView:
    depth: int
    oldest_wait: float | None
    by_capability: dict[str, int] = field(default_factory=dict)


class Scheduler:
    def __init__(
        self, fleet: Fleet, clock: Clock, rng: random.Random, *, max_size: int, max_wait: float
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.rng = rng
        self.max_size = max_size
        self.max_wait = max_wait
        self.depth = 0
        self._queues: dict[str, deque[Waiter]] = {capability: deque() for capability in CAPABILITIES}
        self._order = itertools.count()
        fleet.on_room = self.hand_over

    def __repr__(self) -> str:
        held = sum(endpoint.in_flight for endpoint in self.fleet)
        return f"<Scheduler [tokens held: {held}, queued: {self.depth}]>"

    def try_lease(self, capability: str, avoid: frozenset[str] = frozenset()) -> Lease | None:
        """A token on the best endpoint with room now (one not in ``avoid`` if possible), or None."""
        with_room = self.fleet.with_room(capability)
        fresh = [endpoint for endpoint in with_room if endpoint.id not in avoid] if avoid else with_room
        for pool in (fresh, with_room):
            endpoint = self._choose(sample(pool, self.rng))
            if endpoint is not None:
                return self._grant(endpoint, capability)
        return None

    async def lease(self, capability: str, avoid: frozenset[str] = frozenset()) -> Lease:
        """A token, now or after waiting; ``NotServable`` says why there is none."""
        granted = self.try_lease(capability, avoid)
        if granted is not None:
            return granted
        if not self.fleet.any_ready(capability):
            raise NotServable(self.fleet.refusal(capability))
        if self.depth >= self.max_size:
            raise NotServable(Reason.QUEUE_FULL)
        waiter = self._enqueue(capability)
        try:
            return await waiter.future
        except BaseException:
            self._abandon(waiter)
            raise

    def give_back_unused(self, lease: Lease) -> None:
        """Return a lease that was never used for a request."""
        if not lease.done:
            lease.done = True
            lease.endpoint.breaker.release(lease.permit)
            self.fleet.give_back(lease.endpoint)

    def hand_over(self, endpoint: EndpointState) -> None:
        """``endpoint`` has room: give its tokens to the oldest waiters that can use it."""
        while True:
            waiter = self._oldest_waiter(endpoint.config.capabilities)
            if waiter is None or not self.fleet.has_room(endpoint, waiter.capability):
                return
            self._dequeue(waiter)
            if not waiter.future.done():  # done: its task was cancelled and has not run yet
                waiter.future.set_result(self._grant(endpoint, waiter.capability))

    def view(self) -> QueueView:
        live = [waiter for queue in self._queues.values() for waiter in queue if waiter.live]
        oldest = min((waiter.enqueued_at for waiter in live), default=None)
        by_capability = {
            capability: sum(1 for waiter in queue if waiter.live)
            for capability, queue in self._queues.items()
        }
        wait = None if oldest is None else self.clock.monotonic() - oldest
        return QueueView(self.depth, wait, by_capability)

    def _choose(self, pool: Iterable[EndpointState]) -> EndpointState | None:
        by_id = {endpoint.id: endpoint for endpoint in pool}
        candidates = [
            Candidate(
                endpoint.id,
                endpoint.in_flight,
                endpoint.config.max_concurrency,
                endpoint.config.weight,
                endpoint.latency.ewma_ms,
            )
            for endpoint in by_id.values()
        ]
        chosen = choose(candidates, self.rng)
        return None if chosen is None else by_id[chosen.id]

    def _grant(self, endpoint: EndpointState, capability: str) -> Lease:
        permit = endpoint.breaker.try_acquire()
        if permit is None:  # the indexes say it permits; they are refreshed on every breaker change
            raise RuntimeError(f"{endpoint!r} was ready but its circuit refused")
        self.fleet.take(endpoint)
        return Lease(endpoint, permit, capability)

    def _enqueue(self, capability: str) -> Waiter:
        future: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        waiter = Waiter(capability, next(self._order), self.clock.monotonic(), future)
        waiter.timer = self.clock.call_later(self.max_wait, lambda: self._expire(waiter))
        self._queues[capability].append(waiter)
        self.depth += 1
        return waiter

    def _oldest_waiter(self, capabilities: Iterable[str]) -> Waiter | None:
        oldest: Waiter | None = None
        for capability in capabilities:
            queue = self._queues[capability]
            while queue and not queue[0].live:
                queue.popleft()
            if queue and (oldest is None or queue[0].order < oldest.order):
                oldest = queue[0]
        return oldest

    def _dequeue(self, waiter: Waiter) -> None:
        waiter.live = False
        self.depth -= 1
        if waiter.timer is not None:
            waiter.timer.cancel()

    def _expire(self, waiter: Waiter) -> None:
        if waiter.live:
            self._dequeue(waiter)
            waiter.future.set_exception(NotServable(Reason.QUEUE_TIMEOUT))

    def _abandon(self, waiter: Waiter) -> None:
        if waiter.live:
            self._dequeue(waiter)
        elif waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
            self.give_back_unused(waiter.future.result())
