"""The soak run of ``make chaos``, short: every fault, every admin action, and the whole promise checked.

The full run (``make chaos``, minutes) writes its figures into docs/reliability.md; this one runs
in every ``make test`` so the soak never rots and a broken promise fails the build.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from loadtests.chaos.faults import CATALOGUE
from loadtests.chaos.operator import ACTIONS, LimitChange
from loadtests.chaos.report import render
from loadtests.chaos.soak import SoakSettings, soak, within_lowered_limit


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
    assert result.lowered_checked > 0, "requests ran on gpu-c while its max_concurrency was lowered"
    images = traffic.by_kind["text-to-image"] + traffic.by_kind["image-to-image"]
    assert result.gateway_answers.total() == images, "the gateway's own count agrees with the clients'"
    assert any(peak == limit for peak, limit in result.peaks.values()), "the GPUs were driven to their limits"
    assert result.final["tasks"] <= result.baseline["tasks"]
    assert result.config_valid


def test_the_lowered_limit_check_sees_a_breach() -> None:
    """The soak's check of a lowered max_concurrency can fail: four requests overlapping while the
    limit is 3 are reported; the same four before the change, or after it was raised again, are not."""
    lowered, raised = LimitChange(10.0, 10.1, 3), LimitChange(20.0, 20.1, 4)

    def requests(at: float) -> list[dict[str, Any]]:
        return [{"received_at": at + step / 100, "ended_at": at + 1} for step in range(4)]

    checked, problem = within_lowered_limit("gpu-c", requests(12.0), [lowered, raised], 4)
    assert checked == 4
    assert problem is not None
    assert "4 in flight" in problem
    for at in (5.0, 25.0):
        assert within_lowered_limit("gpu-c", requests(at), [lowered, raised], 4) == (0, None)
    three = requests(12.0)[:3]
    assert within_lowered_limit("gpu-c", three, [lowered, raised], 4) == (3, None)
