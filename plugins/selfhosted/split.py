"""The traffic split: exactly ``percentage`` percent of eligible requests, over any window.

A smooth deterministic split (the Bresenham line, or nginx's smooth weighted round robin with two
peers): each request adds ``percentage`` to a credit, and a request that brings the credit to 100
goes self-hosted. Over any run of consecutive requests the self-hosted count is the exact share
rounded down or up, never off by more than one. Arithmetic is in integers so it never drifts.
"""

from __future__ import annotations

_SCALE = 10_000  # percentages with up to four decimals are exact
_WHOLE = 100 * _SCALE


class SmoothSplit:
    def __init__(self, percentage: float) -> None:
        self._credit = 0
        self._step = 0
        self.percentage = percentage

    @property
    def percentage(self) -> float:
        return self._step / _SCALE

    @percentage.setter
    def percentage(self, value: float) -> None:
        """A new share applies from the next request on; the credit carries over, so no burst."""
        if not 0 <= value <= 100:
            raise ValueError("a percentage is between 0 and 100")
        self._step = round(value * _SCALE)
        self._credit = min(self._credit, _WHOLE - 1)

    def __repr__(self) -> str:
        return f"<SmoothSplit {self.percentage}% credit={self._credit / _SCALE}>"

    def take(self) -> bool:
        """Should this request go self-hosted?"""
        self._credit += self._step
        if self._credit >= _WHOLE:
            self._credit -= _WHOLE
            return True
        return False
