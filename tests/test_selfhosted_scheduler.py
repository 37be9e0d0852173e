"""plugins/selfhosted/{scheduler,fleet,store}.py: tokens, the FIFO queue and hand-over, on a fake clock."""

from __future__ import annotations

import asyncio
import random

import anyio
import anyio.lowlevel
import pytest

from gateway.clock import FakeClock
from plugins.selfhosted.config import EndpointConfig, with_ids
from plugins.selfhosted.fleet import Settings
from plugins.selfhosted.scheduler import Lease, NotServable, Verdict
from plugins.selfhosted.stats import Reason
from plugins.selfhosted.store import InMemoryStore, Limits

pytestmark = pytest.mark.anyio
T2I, I2I = "text-to-image", "image-to-image"


def endpoint(name: str, **fields: object) -> EndpointConfig:
    return EndpointConfig.model_validate({"name": name, "url": f"http://{name}.test", **fields})


async def make_store(
    clock: FakeClock,
    *endpoints: EndpointConfig,
    queue_max_size: int = 10,
    queue_max_wait: float = 30,
    healthy: bool = True,
    health_ttl: float = 30,
) -> InMemoryStore:
    settings = Settings(timeout=90, failure_threshold=3, circuit_reset=300, health_ttl=health_ttl)
    store = InMemoryStore(Limits(settings, queue_max_size, queue_max_wait), clock, random.Random(0))
    for endpoint_id in await store.configure(with_ids(endpoints)):
        await mark(store, endpoint_id, healthy)
    return store


async def mark(store: InMemoryStore, endpoint_id: str, healthy: bool = True) -> None:
    """Record a health probe result for the endpoint's current URL."""
    state = store.endpoint(endpoint_id)
    assert state is not None
    await store.record_probe(endpoint_id, state.config.url, healthy, None if healthy else "down")


def held(store: InMemoryStore) -> dict[str, int]:
    return {state.id: state.in_flight for state in store.endpoints()}


async def test_tokens_never_exceed_max_concurrency() -> None:
    clock = FakeClock()
    store = await make_store(
        clock, endpoint("a", max_concurrency=2), endpoint("b", max_concurrency=1), queue_max_size=0
    )
    leases = [await store.lease(T2I, frozenset()) for _ in range(3)]
    assert held(store) == {"a": 2, "b": 1}
    with pytest.raises(NotServable) as full:
        await store.lease(T2I, frozenset())
    assert full.value.reason is Reason.QUEUE_FULL
    for lease in leases:
        await store.finish(lease, Verdict.SUCCESS, latency_ms=10)
    assert held(store) == {"a": 0, "b": 0}


async def test_a_freed_token_goes_to_the_oldest_waiter_at_once() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", max_concurrency=1))
    first = await store.lease(T2I, frozenset())
    order: list[str] = []

    async def wait(name: str) -> None:
        lease = await store.lease(T2I, frozenset())
        order.append(name)
        await store.finish(lease, Verdict.SUCCESS)

    async with anyio.create_task_group() as tasks:
        for name in ("one", "two", "three"):
            tasks.start_soon(wait, name)
            await anyio.lowlevel.checkpoint()
        await anyio.lowlevel.checkpoint()
        assert store.queue().depth == 3
        assert "queued: 3" in repr(store.scheduler)
        await store.finish(first, Verdict.SUCCESS)
    assert order == ["one", "two", "three"]
    assert held(store) == {"a": 0}
    assert store.queue().depth == 0


async def test_a_wait_longer_than_queue_max_wait_falls_back() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", max_concurrency=1), queue_max_wait=20)
    busy = await store.lease(T2I, frozenset())
    outcome: list[Reason] = []

    async def wait() -> None:
        try:
            await store.lease(T2I, frozenset())
        except NotServable as refusal:
            outcome.append(refusal.reason)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        await anyio.lowlevel.checkpoint()
        clock.advance(19.9)
        await anyio.lowlevel.checkpoint()
        assert outcome == []
        clock.advance(0.1)
    assert outcome == [Reason.QUEUE_TIMEOUT]
    assert store.queue().depth == 0
    await store.finish(busy, Verdict.SUCCESS)
    assert held(store) == {"a": 0}


async def test_a_waiter_that_leaves_leaves_the_queue() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", max_concurrency=1))
    busy = await store.lease(T2I, frozenset())
    with anyio.move_on_after(0.01):
        await store.lease(T2I, frozenset())
    assert store.queue().depth == 0
    await store.finish(busy, Verdict.SUCCESS)
    assert held(store) == {"a": 0}, "nobody was handed the freed token"


async def test_a_token_handed_over_as_the_waiter_is_cancelled_comes_back() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", max_concurrency=1))
    busy = await store.lease(T2I, frozenset())
    waiting = asyncio.get_running_loop().create_task(store.lease(T2I, frozenset()))
    await asyncio.sleep(0)
    await store.finish(busy, Verdict.SUCCESS)  # hands the token to the waiter ...
    assert held(store) == {"a": 1}
    waiting.cancel()  # ... whose client leaves before the waiter runs again
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert held(store) == {"a": 0}
    assert store.queue().depth == 0


async def test_fallback_reasons() -> None:
    clock = FakeClock()
    none_capable = await make_store(clock, endpoint("a", capabilities=[I2I]))
    with pytest.raises(NotServable) as caught:
        await none_capable.lease(T2I, frozenset())
    assert caught.value.reason is Reason.NO_CAPABLE_ENDPOINT
    unhealthy = await make_store(clock, endpoint("a"), healthy=False)
    with pytest.raises(NotServable) as caught:
        await unhealthy.lease(T2I, frozenset())
    assert caught.value.reason is Reason.ALL_UNHEALTHY
    tripped = await make_store(clock, endpoint("a"))
    for _ in range(3):
        await tripped.finish(await tripped.lease(T2I, frozenset()), Verdict.FAILURE, error="HTTP 503")
    with pytest.raises(NotServable) as caught:
        await tripped.lease(T2I, frozenset())
    assert caught.value.reason is Reason.CIRCUIT_OPEN


async def test_health_results_stop_being_trusted_after_the_ttl() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a"))
    clock.advance(30)
    with pytest.raises(NotServable) as caught:
        await store.lease(T2I, frozenset())
    assert caught.value.reason is Reason.ALL_UNHEALTHY
    await mark(store, "a")
    await store.finish(await store.lease(T2I, frozenset()), Verdict.SUCCESS)


async def test_a_reopened_circuit_wakes_a_waiter_after_the_trial() -> None:
    clock = FakeClock()
    store = await make_store(
        clock,
        endpoint("a", max_concurrency=1),
        endpoint("b", max_concurrency=1),
        queue_max_wait=1000,
        health_ttl=1000,
    )
    for _ in range(3):
        await store.finish(await store.lease(T2I, frozenset({"b"})), Verdict.FAILURE)
    state = {s.id: s for s in store.endpoints()}
    assert state["a"].breaker.state.value == "open"
    b_lease = await store.lease(T2I, frozenset())
    assert b_lease.endpoint.id == "b"
    got: list[Lease] = []

    async def wait() -> None:
        got.append(await store.lease(T2I, frozenset()))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        await anyio.lowlevel.checkpoint()
        clock.advance(300)  # the circuit may half-open: a timer makes "a" ready; the waiter takes the trial
        await anyio.lowlevel.checkpoint()
    assert [lease.endpoint.id for lease in got] == ["a"]
    assert got[0].permit.trial
    await store.finish(got[0], Verdict.SUCCESS)
    await store.finish(b_lease, Verdict.SUCCESS)
    assert state["a"].breaker.state.value == "closed"


async def test_retries_prefer_an_endpoint_not_yet_tried() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a"), endpoint("b"))
    for _ in range(5):
        lease = await store.lease(T2I, frozenset({"a"}))
        assert lease.endpoint.id == "b"
        await store.finish(lease, Verdict.SUCCESS)
    only = await store.lease(T2I, frozenset({"a", "b"}))
    assert only.endpoint.id in ("a", "b"), "all tried: any endpoint with room will do"
    await store.finish(only, Verdict.NEUTRAL)


async def test_draining_and_lower_concurrency_apply_to_new_requests_only() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", id="a", max_concurrency=3), queue_max_size=0)
    leases = [await store.lease(T2I, frozenset()) for _ in range(3)]
    await store.configure([endpoint("a", id="a", max_concurrency=1)])
    await store.finish(leases.pop(), Verdict.SUCCESS)
    with pytest.raises(NotServable):
        await store.lease(T2I, frozenset())  # 2 in flight, limit now 1
    await store.configure([endpoint("a", id="a", max_concurrency=1, status="draining")])
    for lease in leases:
        await store.finish(lease, Verdict.SUCCESS)
    assert held(store) == {"a": 0}
    with pytest.raises(NotServable) as caught:
        await store.lease(T2I, frozenset())
    assert caught.value.reason is Reason.NO_CAPABLE_ENDPOINT


async def test_a_removed_endpoint_finishes_its_requests_and_gets_nothing_new() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", id="a"), endpoint("b", id="b"), queue_max_size=0)
    lease_a = await store.lease(T2I, frozenset({"b"}))
    assert lease_a.endpoint.id == "a"
    await store.configure([endpoint("b", id="b")])
    assert [state.id for state in store.endpoints()] == ["b"]
    await store.finish(lease_a, Verdict.SUCCESS)
    assert lease_a.endpoint.in_flight == 0
    for _ in range(4):
        lease = await store.lease(T2I, frozenset())
        assert lease.endpoint.id == "b"
        await store.finish(lease, Verdict.SUCCESS)


async def test_a_queue_timer_firing_for_a_cancelled_waiter_is_harmless() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", max_concurrency=1), queue_max_wait=20)
    busy = await store.lease(T2I, frozenset())
    waiting = asyncio.get_running_loop().create_task(store.lease(T2I, frozenset()))
    await asyncio.sleep(0)
    waiting.cancel()  # the waiter's future is cancelled; its task has not run its cleanup yet
    clock.advance(20)  # ... when its queue timer fires
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert store.queue().depth == 0
    await store.finish(busy, Verdict.SUCCESS)
    assert held(store) == {"a": 0}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("circuit", Reason.CIRCUIT_OPEN),
        ("unhealthy", Reason.ALL_UNHEALTHY),
        ("removed", Reason.NO_CAPABLE_ENDPOINT),
        ("draining", Reason.NO_CAPABLE_ENDPOINT),
    ],
)
async def test_waiters_fall_back_at_once_when_the_last_ready_endpoint_goes(
    change: str, reason: Reason
) -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", id="a", max_concurrency=1))
    if change == "circuit":
        for _ in range(2):
            await store.finish(await store.lease(T2I, frozenset()), Verdict.FAILURE)
    busy = await store.lease(T2I, frozenset())
    outcome: list[Reason] = []

    async def wait() -> None:
        try:
            await store.lease(T2I, frozenset())
        except NotServable as refusal:
            outcome.append(refusal.reason)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        await anyio.lowlevel.checkpoint()
        assert store.queue().depth == 1
        if change == "circuit":
            await store.finish(busy, Verdict.FAILURE)  # the third failure in a row
        elif change == "unhealthy":
            await mark(store, "a", healthy=False)
        else:
            configs = (
                [] if change == "removed" else [endpoint("a", id="a", max_concurrency=1, status="draining")]
            )
            await store.configure(configs)
    assert outcome == [reason], "no waiting on an endpoint that cannot serve"
    assert store.queue().depth == 0
    await store.finish(busy, Verdict.NEUTRAL)


async def test_a_retry_waits_for_another_endpoint_rather_than_returning_to_the_failed_one() -> None:
    clock = FakeClock()
    store = await make_store(
        clock, endpoint("a", id="a", max_concurrency=1), endpoint("b", id="b", max_concurrency=1)
    )
    busy_b = await store.lease(T2I, frozenset({"a"}))
    assert busy_b.endpoint.id == "b"
    retry: list[str] = []

    async def wait() -> None:
        lease = await store.lease(T2I, frozenset({"a"}))  # failed on "a"; "a" is free, "b" is busy
        retry.append(lease.endpoint.id)
        await store.finish(lease, Verdict.SUCCESS)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(wait)
        await anyio.lowlevel.checkpoint()
        assert retry == []
        assert store.queue().depth == 1
        first = await store.lease(T2I, frozenset())  # a fresh request takes "a" meanwhile
        assert first.endpoint.id == "a"
        await store.finish(first, Verdict.SUCCESS)
        assert retry == [], "the retry does not take the endpoint it failed on"
        await store.finish(busy_b, Verdict.SUCCESS)
    assert retry == ["b"]


async def test_a_new_url_is_another_server_but_requests_in_flight_still_count() -> None:
    clock = FakeClock()
    store = await make_store(clock, endpoint("a", id="a", max_concurrency=2), queue_max_size=0)
    old = [await store.lease(T2I, frozenset()) for _ in range(2)]
    for_probe = await store.configure(
        [EndpointConfig(id="a", name="a", url="http://moved.test", max_concurrency=2)]
    )
    assert for_probe == ["a"], "a new URL is probed at once"
    await mark(store, "a")
    with pytest.raises(NotServable):
        await store.lease(T2I, frozenset())  # two still in flight on the same endpoint
    state = store.endpoints()[0]
    assert state.target.base_url == "http://moved.test"
    assert state.breaker.consecutive_failures == 0
    for lease in old:
        await store.finish(lease, Verdict.FAILURE)
    assert held(store) == {"a": 0}
    assert state.breaker.consecutive_failures == 0, (
        "failures of the old server are not held against the new one"
    )
