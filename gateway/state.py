"""``Runtime``: what requests use that exists only while the gateway runs.

The lifespan builds it and hands it to every request through the ASGI lifespan state
(``scope["state"]``), so nothing lives at module level and two gateways never share anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.trace import Tracer
from starlette.types import Scope

from gateway.clock import Clock
from gateway.pool import ConnectionPool
from gateway.upstream import Target, Upstream

STATE_KEY = "gateway.runtime"


@dataclass(frozen=True, slots=True)
class Runtime:
    upstream: Upstream
    cloud: Target
    tracer: Tracer | None
    """None when tracing is off, so requests skip span work entirely."""
    pool: ConnectionPool
    """Every upstream connection (cloud, GPUs, health probes) comes from this one pool."""
    clock: Clock
    started_at: float


def runtime_of(scope: Scope) -> Runtime:
    runtime: Runtime = scope["state"][STATE_KEY]
    return runtime
