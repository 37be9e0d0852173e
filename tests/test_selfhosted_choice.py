"""plugins/selfhosted/choice.py: spare capacity, weight and latency, with seeded randomness."""

from __future__ import annotations

import random
from collections import Counter

from plugins.selfhosted.choice import FULL_SCAN_LIMIT, Candidate, choose, sample


def candidate(
    name: str, in_flight: int = 0, max_concurrency: int = 2, weight: float = 1, latency: float | None = 1000
) -> Candidate:
    return Candidate(name, in_flight, max_concurrency, weight, latency)


def test_nothing_to_choose_from() -> None:
    assert choose([], random.Random(1)) is None


def test_prefers_spare_capacity_relative_to_max_concurrency() -> None:
    busy = candidate("busy", in_flight=1, max_concurrency=2)
    idle = candidate("idle", in_flight=0, max_concurrency=2)
    big = candidate("big", in_flight=3, max_concurrency=8)
    assert choose([busy, idle], random.Random(1)) == idle
    assert choose([busy, big], random.Random(1)) == big, "3 of 8 busy has more room than 1 of 2"


def test_prefers_weight_and_lower_latency() -> None:
    light = candidate("light", weight=1)
    heavy = candidate("heavy", weight=3)
    assert choose([light, heavy], random.Random(1)) == heavy
    slow = candidate("slow", latency=4000)
    fast = candidate("fast", latency=900)
    assert choose([slow, fast], random.Random(1)) == fast


def test_unknown_latency_counts_as_typical() -> None:
    fresh = candidate("fresh", latency=None)
    slow = candidate("slow", latency=3000)
    fast = candidate("fast", latency=1000)
    assert choose([fresh, slow], random.Random(1)) in (fresh, slow)
    assert choose([fresh, slow, fast], random.Random(1)) == fast


def test_ties_are_broken_by_the_injected_randomness() -> None:
    peers = [candidate(f"gpu-{index}") for index in range(3)]
    picks = Counter(
        choice.id for choice in (choose(peers, random.Random(seed)) for seed in range(300)) if choice
    )
    assert set(picks) == {"gpu-0", "gpu-1", "gpu-2"}
    assert all(count > 60 for count in picks.values())
    assert choose(peers, random.Random(7)) == choose(peers, random.Random(7))


def test_large_fleets_are_sampled_two_at_a_time() -> None:
    rng = random.Random(3)
    small = list(range(FULL_SCAN_LIMIT))
    assert sample(small, rng) is small
    large = list(range(1000))
    picked = sample(large, rng)
    assert len(picked) == 2
    assert set(picked) <= set(large)
