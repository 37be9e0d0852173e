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
    avoid: frozenset[str] = frozenset()
    """Endpoints this request already failed on; it waits for another one."""
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
        fleet.on_none_ready = self.turn_away

    def __repr__(self) -> str:
        held = sum(endpoint.in_flight for endpoint in self.fleet)
        return f"<Scheduler [tokens held: {held}, queued: {self.depth}]>"

    def try_lease(self, capability: str, avoid: frozenset[str] = frozenset()) -> Lease | None:
        """A token on the best endpoint with room now, or None.

        A retry (``avoid``: the endpoints it failed on) takes an endpoint it has not tried, and
        goes back to a tried one only when every ready endpoint has been tried.
        """
        avoid = self._effective(capability, avoid)
        with_room = self.fleet.with_room(capability)
        pool = [endpoint for endpoint in with_room if endpoint.id not in avoid] if avoid else with_room
        endpoint = self._choose(sample(pool, self.rng))
        return None if endpoint is None else self._grant(endpoint, capability)

    async def lease(self, capability: str, avoid: frozenset[str] = frozenset()) -> Lease:
        """A token, now or after waiting; ``NotServable`` says why there is none."""
        granted = self.try_lease(capability, avoid)
        if granted is not None:
            return granted
        if not self.fleet.any_ready(capability):
            raise NotServable(self.fleet.refusal(capability))
        if self.depth >= self.max_size:
            raise NotServable(Reason.QUEUE_FULL)
        waiter = self._enqueue(capability, self._effective(capability, avoid))
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
            waiter = self._oldest_waiter(endpoint)
            if waiter is None or not self.fleet.has_room(endpoint, waiter.capability):
                return
            self._dequeue(waiter)
            if not waiter.future.done():  # done: its task was cancelled and has not run yet
                waiter.future.set_result(self._grant(endpoint, waiter.capability))

    def turn_away(self, capability: str) -> None:
        """No endpoint is ready for ``capability`` any more: its waiters fall back now, not later."""
        queue = self._queues[capability]
        if not queue:
            return
        reason = self.fleet.refusal(capability)
        while queue:
            waiter = queue.popleft()
            if waiter.live:
                self._dequeue(waiter)
                if not waiter.future.done():
                    waiter.future.set_exception(NotServable(reason))

    def _effective(self, capability: str, avoid: frozenset[str]) -> frozenset[str]:
        return avoid if avoid and self.fleet.ready_beyond(capability, avoid) else frozenset()

    def view(self) -> QueueView:
        # Copies first (atomic under the GIL): metric exporters call this from their own thread.
        queues = {capability: list(queue) for capability, queue in list(self._queues.items())}
        live = [waiter for queue in queues.values() for waiter in queue if waiter.live]
        oldest = min((waiter.enqueued_at for waiter in live), default=None)
        by_capability = {
            capability: sum(1 for waiter in queue if waiter.live) for capability, queue in queues.items()
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

    def _enqueue(self, capability: str, avoid: frozenset[str]) -> Waiter:
        future: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        waiter = Waiter(capability, next(self._order), self.clock.monotonic(), future, avoid)
        waiter.timer = self.clock.call_later(self.max_wait, lambda: self._expire(waiter))
        self._queues[capability].append(waiter)
        self.depth += 1
        return waiter

    def _oldest_waiter(self, endpoint: EndpointState) -> Waiter | None:
        """The longest-waiting live request that ``endpoint`` can serve."""
        oldest: Waiter | None = None
        for capability in endpoint.config.capabilities:
            queue = self._queues[capability]
            while queue and not queue[0].live:
                queue.popleft()
            # Retries waiting for another endpoint are rare: skipping them keeps strict FIFO for the rest.
            found = next((wait for wait in queue if wait.live and endpoint.id not in wait.avoid), None)
            if found is not None and (oldest is None or found.order < oldest.order):
                oldest = found
        return oldest

    def _dequeue(self, waiter: Waiter) -> None:
        waiter.live = False
        self.depth -= 1
        if waiter.timer is not None:
            waiter.timer.cancel()

    def _expire(self, waiter: Waiter) -> None:
        if waiter.live:
            self._dequeue(waiter)
            if not waiter.future.done():  # done: its task was cancelled and has not run yet
                waiter.future.set_exception(NotServable(Reason.QUEUE_TIMEOUT))

    def _abandon(self, waiter: Waiter) -> None:
        if waiter.live:
            self._dequeue(waiter)
        elif waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
            self.give_back_unused(waiter.future.result())
