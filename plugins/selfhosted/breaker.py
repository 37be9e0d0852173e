"""The circuit breaker of one endpoint: a state enum, a table of legal transitions, an injected clock.

    CLOSED ──(failure_threshold consecutive failures)──► OPEN
    OPEN ──(reset_timeout elapsed)──► HALF_OPEN          exactly one trial request is let through
    HALF_OPEN ──(trial succeeds)──► CLOSED
    HALF_OPEN ──(trial fails)──► OPEN                    for another reset_timeout

Like resilience4j, the breaker does not wrap the call, which suits streaming: ``try_acquire()``
gives a ``Permit``, later passed to ``on_success``, ``on_failure`` or ``release`` (no verdict: the
client left). A permit remembers the state period it was issued in: the verdict of a request that
began before the circuit last changed state is not evidence about the endpoint now, and is ignored.

Reading the state never changes it (metrics read it from their exporter's thread); the OPEN to
HALF_OPEN transition is taken by the next call that acts on the breaker.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.clock import Clock


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


TRANSITIONS: dict[CircuitState, frozenset[CircuitState]] = {
    CircuitState.CLOSED: frozenset({CircuitState.OPEN}),
    CircuitState.OPEN: frozenset({CircuitState.HALF_OPEN}),
    CircuitState.HALF_OPEN: frozenset({CircuitState.CLOSED, CircuitState.OPEN}),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Permit:
    period: int
    trial: bool


class CircuitBreaker:
    def __init__(self, failure_threshold: int, reset_timeout: float, clock: Clock) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._period = 0
        self._trial_taken = False
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        """Monotonic time the circuit last opened."""

    def __repr__(self) -> str:
        return f"<CircuitBreaker [{self.state.value}, failures={self.consecutive_failures}]>"

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._reset_elapsed():
            return CircuitState.HALF_OPEN
        return self._state

    @property
    def reset_at(self) -> float | None:
        """Monotonic time the circuit may half-open, while it is open."""
        if self.state is CircuitState.OPEN and self.opened_at is not None:
            return self.opened_at + self.reset_timeout
        return None

    def permits(self) -> bool:
        """Would ``try_acquire`` succeed now? (Does not take the half-open trial.)"""
        state = self.state
        trial_taken = self._trial_taken and self._state is CircuitState.HALF_OPEN
        return state is CircuitState.CLOSED or (state is CircuitState.HALF_OPEN and not trial_taken)

    def try_acquire(self) -> Permit | None:
        """Permission for one request; in half-open only the first caller gets it (the trial)."""
        self._catch_up()
        if not self.permits():
            return None
        trial = self._state is CircuitState.HALF_OPEN
        self._trial_taken = self._trial_taken or trial
        return Permit(self._period, trial)

    def reset(self) -> None:
        """Back to a closed circuit with no history (the endpoint now is another server)."""
        self._state = CircuitState.CLOSED
        self._period += 1
        self._trial_taken = False
        self.consecutive_failures = 0
        self.opened_at = None

    def on_success(self, permit: Permit) -> None:
        self._catch_up()
        if permit.period != self._period:
            return
        if self._state is CircuitState.CLOSED:
            self.consecutive_failures = 0
        elif self._state is CircuitState.HALF_OPEN and permit.trial:
            self.consecutive_failures = 0
            self._move(CircuitState.CLOSED)

    def on_failure(self, permit: Permit) -> None:
        self._catch_up()
        if permit.period != self._period:
            return
        if self._state is CircuitState.CLOSED:
            self.consecutive_failures += 1
            if self.consecutive_failures >= self.failure_threshold:
                self._move(CircuitState.OPEN)
        elif self._state is CircuitState.HALF_OPEN and permit.trial:
            self.consecutive_failures += 1
            self._move(CircuitState.OPEN)

    def release(self, permit: Permit) -> None:
        """A permitted request ended with no verdict (the client left): free the half-open trial."""
        self._catch_up()
        if permit.period == self._period and permit.trial:
            self._trial_taken = False

    def _catch_up(self) -> None:
        if self._state is CircuitState.OPEN and self._reset_elapsed():
            self._move(CircuitState.HALF_OPEN)

    def _reset_elapsed(self) -> bool:
        return self.opened_at is not None and self._clock.monotonic() >= self.opened_at + self.reset_timeout

    def _move(self, target: CircuitState) -> None:
        if target not in TRANSITIONS[self._state]:
            raise IllegalTransition(f"{self._state.value} -> {target.value}")
        self._state = target
        self._period += 1
        self._trial_taken = False
        if target is CircuitState.OPEN:
            self.opened_at = self._clock.monotonic()
