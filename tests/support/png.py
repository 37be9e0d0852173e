"""Checking that bytes are a real PNG: signature, chunk CRCs, and the image header."""

from __future__ import annotations

import base64
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a valid PNG; ``ValueError`` if any chunk is malformed."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG signature")
    offset, size, chunk_types = len(SIGNATURE), (0, 0), []
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        payload = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        if zlib.crc32(kind + payload) != crc:
            raise ValueError(f"bad CRC in chunk {kind!r}")
        if kind == b"IHDR":
            size = struct.unpack(">II", payload[:8])
        chunk_types.append(kind)
        offset += 12 + length
    if chunk_types[0] != b"IHDR" or chunk_types[-1] != b"IEND":
        raise ValueError("a PNG starts with IHDR and ends with IEND")
    return size


def b64_png_size(b64: str) -> tuple[int, int]:
    return png_size(base64.b64decode(b64, validate=True))
