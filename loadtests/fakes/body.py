"""Response bodies that know their length up front and produce their bytes lazily."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator

PIECE_SIZE = 64 * 1024
_BYTES_PATTERN = hashlib.shake_256(b"loadtests.fakes /bytes").digest(PIECE_SIZE)


@dataclasses.dataclass(frozen=True)
class Body:
    """``length`` bytes (None: unknown, send chunked) produced by a fresh iterator per call of ``produce``."""

    length: int | None
    produce: Callable[[], Iterator[bytes]]

    @classmethod
    def of(cls, data: bytes) -> Body:
        return cls(len(data), lambda: iter((data,)) if data else iter(()))

    def read_all(self) -> bytes:
        """The whole body at once; for small bodies and tests only."""
        return b"".join(self.produce())

    def truncated(self, limit: int) -> Body:
        """The first ``limit`` bytes of this body, as a body of that exact length."""
        limit = limit if self.length is None else min(limit, self.length)
        return Body(limit, lambda: take(self.produce(), limit))

    def unsized(self) -> Body:
        """The same bytes, with the length withheld so that they go out chunked."""
        return Body(None, self.produce)


def take(pieces: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """At most ``limit`` bytes of ``pieces``, stopping (and so not producing) the rest."""
    remaining = limit
    for piece in pieces:
        if remaining <= 0:
            return
        yield piece[:remaining]
        remaining -= len(piece)


def coalesce(pieces: Iterable[bytes], size: int = PIECE_SIZE) -> Iterator[bytes]:
    """Join small pieces into pieces of about ``size`` bytes, so each write is worth a syscall."""
    pending: list[bytes] = []
    pending_len = 0
    for piece in pieces:
        pending.append(piece)
        pending_len += len(piece)
        if pending_len >= size:
            yield b"".join(pending)
            pending, pending_len = [], 0
    if pending_len:
        yield b"".join(pending)


def pattern_bytes(count: int) -> Body:
    """``count`` bytes of a fixed pseudo-random pattern, generated in ``PIECE_SIZE`` pieces."""

    def produce() -> Iterator[bytes]:
        remaining = count
        while remaining > 0:
            piece = _BYTES_PATTERN[: min(remaining, PIECE_SIZE)]
            remaining -= len(piece)
            yield piece

    return Body(count, produce)
