"""The load tests and benchmarks never rot: the locustfile and a smoke run of ``make bench``."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from tests.conftest import StartGateway
from tests.support.selfhosted import all_healthy, endpoint, gateway_config, wait_for
from tests.support.stack import Fake

ROOT = Path(__file__).resolve().parents[1]


def test_the_locustfile_runs_its_whole_mix_without_failures(
    gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake], tmp_path: Path
) -> None:
    gateway = gateway_factory(
        gateway_config(cloud, [endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")], percentage=50)
    )
    wait_for(lambda: gateway.admin().get("/api/v1/admin/selfhosted").json(), all_healthy)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "loadtests/locustfile.py",
        "--headless",
        "-u",
        "6",
        "-r",
        "6",
        "-t",
        "6s",
        "--host",
        gateway.url,
        "--csv",
        str(tmp_path / "run"),
        "--only-summary",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row["Name"]: row for row in csv.DictReader((tmp_path / "run_stats.csv").open())}
    for name in ("text-to-image", "image-to-image", "motion-transfer (cloud only)"):
        assert int(rows[name]["Request Count"]) > 0, name
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert (
        gpus[0].stats()["by_route"].get("POST /v1/images/edits", 0)
        + gpus[1].stats()["by_route"].get("POST /v1/images/edits", 0)
        > 0
    ), "image-to-image traffic reached the GPUs"


def test_a_smoke_run_of_the_benchmarks_writes_every_section(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "loadtests.bench", "--smoke", "--report", str(report)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    text = report.read_text()
    for heading in ("## Overhead", "## GPU utilisation", "## Streaming memory", "## Scale"):
        assert heading in text
    for chart in ("overhead", "utilisation", "streaming", "scale"):
        assert (tmp_path / "bench" / f"{chart}.png").stat().st_size > 5_000
    assert "| gateway (selfhosted) | all healthy |" in text
    assert "| random choice (LiteLLM default) | 1 of 3 failing |" in text
    assert "nan" not in text.lower().replace("nano", "")
