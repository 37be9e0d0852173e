"""Choosing an endpoint among those that can take a request now: pure code, randomness injected.

The score is the expected delay of one more request on the endpoint ("shortest expected delay"):

    latency x (in_flight + 1) / (max_concurrency x weight)

so spare capacity relative to ``max_concurrency``, a larger ``weight`` and a lower recent latency
all make an endpoint more attractive. An endpoint with no latency yet counts as average. Small
fleets are scored in full; large ones by the power of two random choices (Mitzenmacher), which keeps
the cost per request flat however many endpoints are configured.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

FULL_SCAN_LIMIT = 8
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    in_flight: int
    max_concurrency: int
    weight: float
    latency_ms: float | None


def score(candidate: Candidate, typical_latency_ms: float) -> float:
    latency = candidate.latency_ms if candidate.latency_ms is not None else typical_latency_ms
    return max(latency, 1.0) * (candidate.in_flight + 1) / (candidate.max_concurrency * candidate.weight)


def typical_latency(candidates: Sequence[Candidate]) -> float:
    known = [candidate.latency_ms for candidate in candidates if candidate.latency_ms is not None]
    return sum(known) / len(known) if known else 1.0


def sample(items: Sequence[T], rng: random.Random) -> Sequence[T]:
    """What to score: everything in a small fleet, two at random in a large one."""
    return items if len(items) <= FULL_SCAN_LIMIT else rng.sample(items, 2)


def choose(candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
    """The best candidate (ties broken at random), or None when there is none."""
    if not candidates:
        return None
    typical = typical_latency(candidates)
    scored = [(score(candidate, typical), candidate) for candidate in candidates]
    best = min(value for value, _ in scored)
    winners = [candidate for value, candidate in scored if value <= best * (1 + 1e-9)]
    return winners[0] if len(winners) == 1 else rng.choice(winners)
