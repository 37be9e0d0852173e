"""What an endpoint's answer means, and whether to try again: pure decisions.

2xx, 3xx                    success: streamed to the client
400 404 413 422 and other   the request's own fault: passed back untouched, not retried, and
client errors               no mark against the endpoint
429, 5xx                    the endpoint's failure: retried elsewhere, counted by the breaker
401 403 407 408             the endpoint's failure too: its credentials or its own timeout
no answer, timeout          failure
"""

from __future__ import annotations

import enum

ENDPOINT_FAULT_4XX = frozenset({401, 403, 407, 408, 429})


class Answer(enum.Enum):
    SUCCESS = "success"
    REQUEST_ERROR = "request_error"
    FAILURE = "failure"


def classify(status: int) -> Answer:
    if status >= 500 or status in ENDPOINT_FAULT_4XX:
        return Answer.FAILURE
    if status >= 400:
        return Answer.REQUEST_ERROR
    return Answer.SUCCESS


def may_retry(attempts_made: int, retries: int) -> bool:
    """After ``attempts_made`` failed attempts, is another allowed? (``retries`` extra after the first.)"""
    return attempts_made <= retries
