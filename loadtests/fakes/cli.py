"""``python -m loadtests.fakes {gpu,cloud} --port P ...``: run one fake until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from loadtests.fakes.config import (
    DEFAULT_SLOW_RATE,
    FakeConfig,
    Kind,
    parse_fail,
    parse_health,
    parse_latency,
    parse_response_bytes,
    parse_slots,
    parse_slow_rate,
)
from loadtests.fakes.runner import run
from loadtests.fakes.stats import RECENT_LIMIT

_T = TypeVar("_T")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests.fakes", description=__doc__)
    parser.add_argument("kind", choices=[kind.value for kind in Kind], help="which upstream to simulate")
    parser.add_argument("--port", type=int, required=True, help="main port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="the one address to bind (default 127.0.0.1)")
    parser.add_argument("--name", help="name in stats and in the start-up line (default <kind>-<port>)")
    parser.add_argument(
        "--latency", type=_checked(parse_latency), default=0.0, help="seconds per API request"
    )
    parser.add_argument("--response-bytes", type=_checked(parse_response_bytes), help="images body size")
    parser.add_argument(
        "--fail", type=_checked(parse_fail), default="none", help="fault mode(s), comma-separated"
    )
    parser.add_argument("--health", type=_checked(parse_health), default="ok", help="ok|unhealthy|hang|flap")
    parser.add_argument(
        "--slow-rate", type=_checked(parse_slow_rate), default=DEFAULT_SLOW_RATE, help="slow_body bytes/s"
    )
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on API routes")
    parser.add_argument(
        "--slots", type=_checked(parse_slots), help="parallel capacity; more requests wait (a GPU)"
    )
    parser.add_argument(
        "--recent", type=int, default=RECENT_LIMIT, help="how many recent requests stats keep"
    )
    parser.add_argument("--control-port", type=int, help="also serve /_fake/ here (needed by 'refuse')")
    return parser


def _checked(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """Let argparse show the parser's own message rather than 'invalid value'."""

    def convert(text: str) -> _T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


async def serve(args: argparse.Namespace) -> None:
    """Run the fake described by ``args`` until a stop signal arrives."""
    config = FakeConfig(
        latency=args.latency,
        response_bytes=args.response_bytes,
        fail=args.fail,
        health=args.health,
        slow_rate=args.slow_rate,
        api_key=args.api_key,
        slots=args.slots,
    )
    fake = await run(
        args.kind,
        args.host,
        args.port,
        config,
        name=args.name,
        control_port=args.control_port,
        recent_limit=args.recent,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"fake-{args.kind} {fake.state.name} listening on {fake.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(f"fake-{args.kind}: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
