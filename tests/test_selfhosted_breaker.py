"""plugins/selfhosted/breaker.py: transitions under a fake clock; exactly one half-open trial."""

from __future__ import annotations

import pytest

from gateway.clock import FakeClock
from plugins.selfhosted.breaker import TRANSITIONS, CircuitBreaker, CircuitState, IllegalTransition, Permit


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = breaker.try_acquire()
        assert permit is not None
        breaker.on_failure(permit)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_timeout=300, clock=clock)


def test_threshold_consecutive_failures_open_the_circuit(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 2
    fail(breaker, 1)
    assert breaker.state.value == "open"
    assert breaker.opened_at == clock.monotonic()
    assert breaker.reset_at == clock.monotonic() + 300
    assert breaker.try_acquire() is None
    assert not breaker.permits()


def test_a_success_resets_the_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    permit = breaker.try_acquire()
    assert permit is not None
    breaker.on_success(permit)
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED


def test_after_the_reset_exactly_one_trial_goes_through(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(299.9)
    assert breaker.try_acquire() is None
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN
    trial = breaker.try_acquire()
    assert trial is not None
    assert trial.trial
    assert [breaker.try_acquire() for _ in range(19)] == [None] * 19


def test_trial_success_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(300)
    trial = breaker.try_acquire()
    assert trial is not None
    breaker.on_success(trial)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.try_acquire() is not None


def test_trial_failure_opens_for_another_reset(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(300)
    trial = breaker.try_acquire()
    assert trial is not None
    breaker.on_failure(trial)
    assert breaker.state.value == "open"
    assert breaker.reset_at == clock.monotonic() + 300
    clock.advance(299)
    assert breaker.try_acquire() is None
    clock.advance(1)
    assert breaker.try_acquire() is not None


def test_a_trial_without_verdict_frees_the_slot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(300)
    trial = breaker.try_acquire()
    assert trial is not None
    breaker.release(trial)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire() is not None


def test_verdicts_from_before_the_circuit_opened_are_ignored(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    early = breaker.try_acquire()
    assert early is not None
    fail(breaker, 3)
    breaker.on_failure(early)
    assert breaker.reset_at == clock.monotonic() + 300, "a late failure does not extend the open window"
    clock.advance(300)
    trial = breaker.try_acquire()
    assert trial is not None
    breaker.on_success(early)
    assert breaker.state is CircuitState.HALF_OPEN, "only the trial's verdict decides"
    breaker.on_failure(Permit(period=-1, trial=True))
    assert breaker.state is CircuitState.HALF_OPEN


def test_transition_table_is_complete_and_enforced(breaker: CircuitBreaker) -> None:
    assert set(TRANSITIONS) == set(CircuitState)
    assert CircuitState.CLOSED not in TRANSITIONS[CircuitState.OPEN]
    with pytest.raises(IllegalTransition, match="closed -> half_open"):
        breaker._move(CircuitState.HALF_OPEN)
    assert repr(breaker) == "<CircuitBreaker [closed, failures=0]>"


def test_reading_the_state_never_moves_it(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Metric exporters read the state from their own thread: a read must not take a transition."""
    fail(breaker, 3)
    clock.advance(300)
    assert [breaker.state for _ in range(3)] == [CircuitState.HALF_OPEN] * 3
    assert breaker.permits()
    assert breaker._state is CircuitState.OPEN, "the transition waits for the next call that acts"
    trial = breaker.try_acquire()
    assert trial is not None
    assert trial.trial
