"""``python -m loadtests.bench [--smoke] [--report docs/benchmarks.md]``: every scenario, one report."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from loadtests.bench import overhead, scale, streaming, utilisation
from loadtests.bench.report import Results, write


def announce(step: str) -> None:
    print(f"bench: {step} ...", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts: check the suite runs, not the numbers"
    )
    parser.add_argument("--report", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    # Thousands of parked requests need as many sockets in the client and the gateway.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        work = Path(folder)
        announce("overhead")
        overhead_result = overhead.run(work, args.smoke)
        announce("utilisation")
        utilisation_result = utilisation.run(work, args.smoke)
        announce("streaming")
        streaming_result = streaming.run(work, args.smoke)
        announce("scale")
        scale_result = scale.run(work, args.smoke)
    elapsed = time.monotonic() - began
    results = Results(
        overhead_result, utilisation_result, streaming_result, scale_result, elapsed, args.smoke
    )
    write(results, args.report)
    print(f"bench: wrote {args.report} in {results.seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
