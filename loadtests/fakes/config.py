"""What a fake upstream is told to do: its kind, fault modes, health mode and tunables.

Parsing lives here too, so the CLI, the ``/_fake/config`` route and the per-request override
headers reject the same bad input with the same messages (as ``ValueError``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_SLOW_RATE = 65536
MAX_RESPONSE_BYTES = 2**31


class Kind(enum.StrEnum):
    """Which upstream is simulated: a self-hosted GPU worker or the cloud API."""

    GPU = "gpu"
    CLOUD = "cloud"


class FailMode(enum.StrEnum):
    """How one API request misbehaves; ``NONE`` answers normally."""

    NONE = "none"
    BAD_REQUEST = "400"
    UNPROCESSABLE = "422"
    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    GATEWAY_TIMEOUT = "504"
    HANG = "hang"
    RESET = "reset"
    RESET_MID_BODY = "reset_mid_body"
    TRUNCATED_JSON = "truncated_json"
    SLOW_HEADERS = "slow_headers"
    SLOW_BODY = "slow_body"
    REFUSE = "refuse"

    @property
    def status(self) -> int | None:
        """The HTTP status of an error-answer mode, None for the socket-level modes."""
        return int(self.value) if self.value.isdigit() else None


class HealthMode(enum.StrEnum):
    """How ``GET /health`` answers."""

    OK = "ok"
    UNHEALTHY = "unhealthy"
    HANG = "hang"
    FLAP = "flap"


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    """The tunable behaviour of one fake; replaced as a whole, never mutated in place."""

    latency: float = 0.0
    response_bytes: int | None = None
    fail: tuple[FailMode, ...] = (FailMode.NONE,)
    health: HealthMode = HealthMode.OK
    slow_rate: int = DEFAULT_SLOW_RATE
    api_key: str | None = None
    slots: int | None = None
    """A GPU's parallel capacity: requests beyond it wait their turn (None: no limit)."""

    def __post_init__(self) -> None:
        # In-process callers may pass plain strings ("hang", ("500", "none")): check and convert
        # them here, so that a bad value fails at construction and not in the middle of a request.
        object.__setattr__(self, "fail", parse_fail(self.fail))
        object.__setattr__(self, "health", parse_health(self.health))
        object.__setattr__(self, "latency", parse_latency(self.latency))
        if self.response_bytes is not None:
            object.__setattr__(self, "response_bytes", parse_response_bytes(self.response_bytes))
        object.__setattr__(self, "slow_rate", parse_slow_rate(self.slow_rate))
        if self.slots is not None:
            object.__setattr__(self, "slots", parse_slots(self.slots))

    def to_json(self) -> dict[str, Any]:
        """The public view; the API key itself is never echoed back."""
        return {
            "latency": self.latency,
            "response_bytes": self.response_bytes,
            "fail": [mode.value for mode in self.fail],
            "health": self.health.value,
            "slow_rate": self.slow_rate,
            "api_key_required": self.api_key is not None,
            "slots": self.slots,
        }

    def updated(self, patch: Mapping[str, Any]) -> FakeConfig:
        """A copy with the JSON ``patch`` applied (checked by ``__post_init__``); ``ValueError`` if bad."""
        unknown = sorted(set(patch) - _PATCHABLE)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **patch)


_PATCHABLE = frozenset({"latency", "response_bytes", "fail", "health", "slow_rate", "slots"})


def parse_latency(value: object) -> float:
    """Seconds, a finite number >= 0 (a JSON number or its text)."""
    number = _number(value, "latency")
    if not math.isfinite(number) or number < 0:
        raise ValueError("latency must be a finite number of seconds >= 0")
    return number


def parse_response_bytes(value: object) -> int:
    """A body size in bytes, 0 <= n <= 2 GiB."""
    number = _integer(value, "response_bytes")
    if not 0 <= number <= MAX_RESPONSE_BYTES:
        raise ValueError(f"response_bytes must be between 0 and {MAX_RESPONSE_BYTES}")
    return number


def parse_slots(value: object) -> int:
    number = _integer(value, "slots")
    if number < 1:
        raise ValueError("slots must be an integer >= 1")
    return number


def parse_slow_rate(value: object) -> int:
    """Bytes per second for ``slow_body``, at least 1."""
    number = _integer(value, "slow_rate")
    if number < 1:
        raise ValueError("slow_rate must be an integer >= 1 (bytes per second)")
    return number


def parse_fail(value: object) -> tuple[FailMode, ...]:
    """``"500,none"`` or ``["500", "none"]`` (JSON numbers allowed) into a non-empty mode cycle."""
    if isinstance(value, str):
        items: Sequence[object] = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError("fail must be a comma-separated string or a list of modes")
    modes = tuple(parse_fail_mode(item) for item in items)
    if not modes:
        raise ValueError("fail must name at least one mode")
    return modes


def parse_fail_mode(value: object) -> FailMode:
    """One fault mode by its name; integers such as 503 are accepted for the status modes."""
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    try:
        return FailMode(text)
    except ValueError:
        known = ", ".join(mode.value for mode in FailMode)
        raise ValueError(f"unknown fail mode {value!r}; known modes: {known}") from None


def parse_health(value: object) -> HealthMode:
    """One health mode by its name."""
    try:
        return HealthMode(value.strip().lower() if isinstance(value, str) else "")
    except ValueError:
        known = ", ".join(mode.value for mode in HealthMode)
        raise ValueError(f"unknown health mode {value!r}; known modes: {known}") from None


def _number(value: object, field: str) -> float:
    # bool is an int subclass; "latency": true is a mistake, not one second.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{field} must be a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{field} must be a number, got {value!r}") from None


def _integer(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{field} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{field} must be an integer, got {value!r}") from None
