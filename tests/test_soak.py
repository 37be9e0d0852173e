"""The soak run of ``make chaos``, short: every fault, every admin action, and the whole promise checked.

The full run (``make chaos``, minutes) writes its figures into docs/reliability.md; this one runs
in every ``make test`` so the soak never rots and a broken promise fails the build.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loadtests.chaos.faults import CATALOGUE
from loadtests.chaos.operator import ACTIONS
from loadtests.chaos.report import render
from loadtests.chaos.soak import SoakSettings, soak


@pytest.mark.timeout(240)
def test_a_short_soak_keeps_every_promise(tmp_path: Path) -> None:
    settings = SoakSettings(duration=20, clients=12, fault_period=0.8, operator_period=1.0, seed=11)
    result = asyncio.run(soak(settings, tmp_path))
    print(render(result, "tests/test_soak.py"))
    assert result.problems == []
    traffic = result.traffic
    assert traffic.sent == traffic.received > 300
    assert traffic.failures == 0
    assert set(traffic.by_route) == {"selfhosted", "cloud"}
    assert set(result.faults_applied) == {str(fault) for fault in CATALOGUE}, "every fault was injected"
    assert result.faults_injected > 0
    assert set(result.admin) == set(ACTIONS), f"every admin action was taken: {result.admin}"
    assert all(peak <= limit for peak, limit in result.peaks.values()), result.peaks
    assert any(peak == limit for peak, limit in result.peaks.values()), "the GPUs were driven to their limits"
    assert result.final["tasks"] <= result.baseline["tasks"]
    assert result.config_valid
