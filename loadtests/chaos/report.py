"""The soak's figures: a Markdown summary, printed and written into docs/reliability.md."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from loadtests.bench.stats import percentile
from loadtests.chaos.soak import SoakResult

BEGIN = "<!-- soak:begin -->"
END = "<!-- soak:end -->"


def render(result: SoakResult, command: str) -> str:
    traffic = result.traffic
    settings = result.settings
    latencies = sorted(traffic.latencies)
    p50 = percentile(latencies, 0.50) * 1000 if latencies else 0.0
    p99 = percentile(latencies, 0.99) * 1000 if latencies else 0.0
    base, final = result.baseline, result.final
    peaks = ", ".join(f"{name} {peak}/{limit}" for name, (peak, limit) in result.peaks.items())
    faults = ", ".join(f"{name} x{count}" for name, count in sorted(result.faults_applied.items()))
    admin = ", ".join(f"{name} x{count}" for name, count in result.admin.items())
    kinds = ", ".join(f"{kind} {count}" for kind, count in traffic.by_kind.most_common())
    routes = ", ".join(f"{route} {count}" for route, count in traffic.by_route.most_common())
    verdict = "passed" if not result.problems else f"FAILED ({len(result.problems)} problems)"
    rows = [
        (
            "run",
            f"{result.elapsed:.0f} s, {settings.clients} concurrent clients, seed {settings.seed}: {verdict}",
        ),
        ("requests sent", f"{traffic.sent} ({kinds})"),
        ("complete answers received", f"{traffic.received} ({routes})"),
        (
            "image requests answered, by the gateway's own count",
            f"{result.gateway_answers.total()} (selfhosted {result.gateway_answers['selfhosted']}, "
            f"cloud {result.gateway_answers['cloud']}, rejected {result.gateway_answers['rejected']})",
        ),
        ("failures seen by clients", f"{traffic.failures}"),
        ("client latency p50 / p99", f"{p50:.0f} ms / {p99:.0f} ms"),
        ("fault windows", f"{sum(result.faults_applied.values())} ({faults})"),
        ("requests the GPUs misbehaved on", f"{result.faults_injected}"),
        ("peak in flight / max_concurrency", peaks),
        (
            "gpu-c requests started while its max_concurrency was lowered to 3",
            f"{result.lowered_checked}, each with at most 3 in flight",
        ),
        (
            "admin actions",
            f"{sum(result.admin.values())} ({admin}); {result.admin_changes} changes, "
            f"{result.audit_lines} audit lines",
        ),
        ("tasks, baseline → end", f"{base.get('tasks')} → {final.get('tasks')}"),
        (
            "upstream connections open, baseline → end",
            f"{base.get('upstream_connections', {}).get('open')} → "
            f"{final.get('upstream_connections', {}).get('open')} "
            f"({_in_use(final)} in use at the end)",
        ),
        (
            "gateway RSS, baseline → peak → end",
            f"{result.rss_baseline_kib / 1024:.1f} → {result.rss_peak_kib / 1024:.1f} → "
            f"{result.rss_final_kib / 1024:.1f} MiB",
        ),
        ("gateway.yaml after the run", "valid" if result.config_valid else "INVALID"),
    ]
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    lines = [
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{command}`, on {machine}, "
        f"Python {platform.python_version()}.",
        "",
        "| figure | value |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    if result.problems:
        lines += ["", "Problems:", "", *(f"- {problem}" for problem in result.problems)]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str) -> None:
    """Replace what lies between the soak markers in ``path`` with ``text``."""
    document = path.read_text()
    head, begin, rest = document.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{path} has no {BEGIN} ... {END} section")
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def _in_use(runtime: dict[str, Any]) -> str:
    connections = runtime.get("upstream_connections", {})
    if "open" not in connections or "idle" not in connections:
        return "unknown"
    in_use = connections["open"] - connections["idle"]
    return "none" if in_use == 0 else str(in_use)
