"""plugins/selfhosted/attempts.py: which answers are failures, and how many attempts are allowed."""

from __future__ import annotations

import pytest

from plugins.selfhosted.attempts import Answer, classify, may_retry


@pytest.mark.parametrize("status", [200, 201, 204, 302])
def test_success(status: int) -> None:
    assert classify(status) is Answer.SUCCESS


@pytest.mark.parametrize("status", [400, 404, 405, 409, 413, 415, 422])
def test_the_requests_own_fault_goes_back_untouched(status: int) -> None:
    assert classify(status) is Answer.REQUEST_ERROR


@pytest.mark.parametrize("status", [401, 403, 408, 429, 500, 502, 503, 504, 599])
def test_endpoint_failures(status: int) -> None:
    assert classify(status) is Answer.FAILURE


def test_retries_count_attempts_after_the_first() -> None:
    assert [may_retry(made, retries=2) for made in range(5)] == [True, True, True, False, False]
    assert [may_retry(made, retries=0) for made in range(2)] == [True, False]
