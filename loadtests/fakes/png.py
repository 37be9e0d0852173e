"""Real, valid PNG files: tiny solid-colour images, optionally padded to an exact size.

Padding is an ancillary private chunk (``pdDg``: lower-case first letter, so decoders skip it)
placed before ``IEND``. Its bytes are produced piece by piece with a running CRC, so a 50 MB
image is never held in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
import zlib
from collections.abc import Iterator

SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAD_CHUNK_TYPE = b"pdDg"
# Length (4) + type (4) + CRC (4) around a chunk's data.
CHUNK_OVERHEAD = 12
SIDE = 64
PIECE_SIZE = 64 * 1024
# Padding content: fixed, incompressible-looking bytes so that gzip on a proxy cannot shrink it away.
_PAD_PATTERN = hashlib.shake_256(b"loadtests.fakes padding").digest(PIECE_SIZE)


def chunk(kind: bytes, data: bytes) -> bytes:
    """One complete PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def colour_for(seed: bytes) -> tuple[int, int, int]:
    """A colour derived from ``seed`` so that different prompts give visibly different images."""
    digest = hashlib.sha256(seed).digest()
    return digest[0], digest[1], digest[2]


def solid_png_head(rgb: tuple[int, int, int], side: int = SIDE) -> bytes:
    """Signature, IHDR and IDAT of a ``side`` x ``side`` 8-bit RGB image: all but ``IEND``."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * side  # filter type 0, then the pixels
    idat = zlib.compress(row * side, 9)
    return SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)


IEND = chunk(b"IEND", b"")


@dataclasses.dataclass(frozen=True)
class PngPlan:
    """A PNG to stream: a solid image plus, if ``padding`` is set, a pad chunk of that many data bytes."""

    head: bytes
    padding: int | None = None

    @classmethod
    def for_seed(cls, seed: bytes, padding: int | None = None) -> PngPlan:
        return cls(solid_png_head(colour_for(seed)), padding)

    @property
    def size(self) -> int:
        pad = 0 if self.padding is None else CHUNK_OVERHEAD + self.padding
        return len(self.head) + pad + len(IEND)

    def pieces(self) -> Iterator[bytes]:
        """The file's bytes in pieces of at most about ``PIECE_SIZE``."""
        yield self.head
        if self.padding is not None:
            yield from _pad_chunk(self.padding)
        yield IEND


def _pad_chunk(length: int) -> Iterator[bytes]:
    yield struct.pack(">I", length) + PAD_CHUNK_TYPE
    crc = zlib.crc32(PAD_CHUNK_TYPE)
    remaining = length
    while remaining > 0:
        piece = _PAD_PATTERN[: min(remaining, PIECE_SIZE)]
        crc = zlib.crc32(piece, crc)
        remaining -= len(piece)
        yield piece
    yield struct.pack(">I", crc)
