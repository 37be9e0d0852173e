"""Time as a parameter: production code reads a ``Clock``; tests move a ``FakeClock`` by hand.

Everything time-based in the gateway — circuit resets, queue waits, attempt deadlines, health
cadence — goes through ``monotonic()`` and ``call_later()``, so a test advances 300 s at once
instead of sleeping through them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import anyio


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; for timeouts and durations."""
        ...

    def wall(self) -> float:
        """Unix time in seconds; only for timestamps shown to people."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Run ``callback`` (in the event loop) once ``delay`` seconds have passed on this clock."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(max(delay, 0.0), callback)

    def __repr__(self) -> str:
        return "<SystemClock>"


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], object]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to: ``clock.advance(300)`` fires every timer due by then."""

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._offset = wall_start - start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._offset

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        timer = _FakeTimer(self._now + max(delay, 0.0), callback)
        heapq.heappush(self._timers, (timer.due, next(self._order), timer))
        return timer

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            due, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not timer.cancelled:
                timer.callback()
        self._now = target

    @property
    def pending(self) -> int:
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def __repr__(self) -> str:
        return f"<FakeClock monotonic={self._now} timers={self.pending}>"


@contextmanager
def deadline(clock: Clock, seconds: float) -> Iterator[anyio.CancelScope]:
    """A cancel scope that ``clock`` cancels after ``seconds``; check ``cancelled_caught`` after it."""
    with anyio.CancelScope() as scope:
        timer = clock.call_later(seconds, scope.cancel)
        try:
            yield scope
        finally:
            timer.cancel()


async def sleep(clock: Clock, seconds: float) -> None:
    """Sleep on ``clock`` (a ``FakeClock`` wakes this when advanced far enough)."""
    done = anyio.Event()
    timer = clock.call_later(seconds, done.set)
    try:
        await done.wait()
    finally:
        timer.cancel()
