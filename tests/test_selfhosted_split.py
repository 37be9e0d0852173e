"""plugins/selfhosted/split.py: the split is exact over any window, never a drifting coin flip."""

from __future__ import annotations

import math

import pytest

from plugins.selfhosted.split import SmoothSplit


def decisions(split: SmoothSplit, count: int) -> list[bool]:
    return [split.take() for _ in range(count)]


@pytest.mark.parametrize("percentage", [0, 1, 12.5, 25, 33.3, 50, 66.67, 99, 100])
def test_every_window_is_within_one_request_of_the_exact_share(percentage: float) -> None:
    taken = decisions(SmoothSplit(percentage), 3000)
    share = percentage / 100
    for width in (1, 7, 10, 100, 997):
        for start in range(0, len(taken) - width, 53):
            count = sum(taken[start : start + width])
            assert math.floor(width * share) <= count <= math.ceil(width * share), (width, start, count)


def test_zero_sends_none_and_hundred_sends_all() -> None:
    assert not any(decisions(SmoothSplit(0), 500))
    assert all(decisions(SmoothSplit(100), 500))


def test_twenty_five_percent_is_every_fourth_request() -> None:
    assert decisions(SmoothSplit(25), 8) == [False, False, False, True] * 2


def test_a_new_percentage_applies_from_the_next_request_without_a_burst() -> None:
    split = SmoothSplit(10)
    decisions(split, 5)
    split.percentage = 50
    assert split.percentage == 50
    after = decisions(split, 100)
    assert sum(after) in (50, 51)
    assert not any(after[i] and after[i + 1] for i in range(len(after) - 1)), "50% alternates"


def test_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        SmoothSplit(101)
    split = SmoothSplit(20)
    with pytest.raises(ValueError, match="between 0 and 100"):
        split.percentage = -1
    assert split.percentage == 20
