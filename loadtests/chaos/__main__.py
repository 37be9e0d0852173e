"""``python -m loadtests.chaos [--duration S] [--clients N] [--report docs/reliability.md]``

Exits 0 when every promise held, 1 with the problems listed otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from pathlib import Path

from loadtests.chaos.report import render, write_section
from loadtests.chaos.soak import SoakSettings, soak


def main(argv: list[str] | None = None) -> int:
    defaults = SoakSettings()
    parser = argparse.ArgumentParser(prog="python -m loadtests.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent clients")
    parser.add_argument("--max-requests", type=int, default=defaults.max_requests, help="request budget")
    parser.add_argument("--fault-period", type=float, default=defaults.fault_period, help="seconds")
    parser.add_argument("--operator-period", type=float, default=defaults.operator_period, help="seconds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--logs", type=Path, help="keep the processes' logs here (default: a temporary folder)"
    )
    parser.add_argument(
        "--report", type=Path, help="write the figures into this Markdown file's soak section"
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.max_requests < 1:
        parser.error("--duration, --clients and --max-requests must be positive")
    settings = SoakSettings(
        duration=args.duration,
        clients=args.clients,
        max_requests=args.max_requests,
        fault_period=args.fault_period,
        operator_period=args.operator_period,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as temporary:
        folder = args.logs or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(soak(settings, folder))
    command = shlex.join(["python", "-m", "loadtests.chaos", *(argv if argv is not None else sys.argv[1:])])
    text = render(result, command)
    print(text)
    if args.report is not None:
        write_section(args.report, text)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
