"""The OpenAI images answer, ``{"created": t, "data": [{"b64_json": ...}, ...]}``, streamed.

With a target size the body is exactly that many bytes: each image gets an even share of the
growth as PNG padding, and since base64 only grows in steps of 4 bytes per image, the last few
bytes are JSON whitespace before the closing brace. A target below the natural size is ignored.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence

from loadtests.fakes.body import Body, coalesce
from loadtests.fakes.png import CHUNK_OVERHEAD, PngPlan

_ITEM_OPEN = b'{"b64_json":"'
_ITEM_CLOSE = b'"}'


def b64_len(raw_len: int) -> int:
    """Length of the padded base64 encoding of ``raw_len`` bytes."""
    return 4 * -(-raw_len // 3)


def images_body(seeds: Sequence[bytes], created: int, target: int | None = None) -> Body:
    """The JSON answer with one image per seed; exactly ``target`` bytes when that is reachable."""
    prefix = b'{"created":%d,"data":[' % created
    plans = [PngPlan.for_seed(seed) for seed in seeds]
    natural = _json_len(prefix, plans, whitespace=0)
    whitespace = 0
    if target is not None and target > natural:
        plans, whitespace = _pad_plans(plans, target - natural)
    length = _json_len(prefix, plans, whitespace)

    def produce() -> Iterator[bytes]:
        return coalesce(_json_pieces(prefix, plans, whitespace))

    return Body(length, produce)


def _json_len(prefix: bytes, plans: Sequence[PngPlan], whitespace: int) -> int:
    items = sum(len(_ITEM_OPEN) + b64_len(plan.size) + len(_ITEM_CLOSE) for plan in plans)
    commas = max(len(plans) - 1, 0)
    return len(prefix) + items + commas + len(b"]") + whitespace + len(b"}")


def _pad_plans(plans: Sequence[PngPlan], extra: int) -> tuple[list[PngPlan], int]:
    """Spread ``extra`` bytes of growth over the images; returns them and the whitespace left over."""
    share = extra // len(plans)
    padded: list[PngPlan] = []
    grown = 0
    for plan in plans:
        new = _padded_within(plan, share)
        grown += b64_len(new.size) - b64_len(plan.size)
        padded.append(new)
    return padded, extra - grown


def _padded_within(plan: PngPlan, share: int) -> PngPlan:
    """The largest padding whose base64 grows by at most ``share`` bytes (then by share - 3 or more)."""
    base = plan.size
    # Largest raw size whose encoding fits in b64_len(base) + share bytes.
    raw_max = 3 * ((b64_len(base) + share) // 4)
    padding = raw_max - base - CHUNK_OVERHEAD
    if padding < 0:
        return plan
    return PngPlan(plan.head, padding)


def _json_pieces(prefix: bytes, plans: Sequence[PngPlan], whitespace: int) -> Iterator[bytes]:
    yield prefix
    for index, plan in enumerate(plans):
        yield (b"," if index else b"") + _ITEM_OPEN
        yield from b64_pieces(plan.pieces())
        yield _ITEM_CLOSE
    yield b"]" + b" " * whitespace + b"}"


def b64_pieces(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 of the concatenated ``pieces``, encoded in 3-byte-aligned parts as they come."""
    carry = b""
    for piece in pieces:
        data = carry + piece if carry else piece
        cut = len(data) - len(data) % 3
        if cut:
            yield base64.b64encode(data[:cut])
        carry = data[cut:]
    if carry:
        yield base64.b64encode(carry)
