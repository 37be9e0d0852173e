"""Shared fixtures: simulated upstreams (one process per session) and gateways (one per test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Fake, GatewayProcess, start_fake, start_gateway

StartGateway = Callable[..., GatewayProcess]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def _cloud_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    fake = start_fake("cloud", tmp_path_factory.mktemp("cloud"), "cloud")
    yield fake
    fake.process.stop()


@pytest.fixture
def cloud(_cloud_process: Fake) -> Fake:
    """The simulated cloud image API, well-behaved and with zeroed counters."""
    _cloud_process.restore()
    return _cloud_process


@pytest.fixture(scope="session")
def _gpu_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Fake]]:
    folder = tmp_path_factory.mktemp("gpus")
    fakes = [start_fake("gpu", folder, f"gpu-{index}") for index in range(3)]
    yield fakes
    for fake in fakes:
        fake.process.stop()


@pytest.fixture
def gpus(_gpu_processes: list[Fake]) -> list[Fake]:
    """Three simulated GPU endpoints, well-behaved and with zeroed counters."""
    for fake in _gpu_processes:
        fake.restore()
    return _gpu_processes


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[StartGateway]:
    """Start gateways from config dicts; each is stopped, and its log checked, after the test."""
    started: list[GatewayProcess] = []

    def start(config: dict[str, Any], env: dict[str, str] | None = None) -> GatewayProcess:
        gateway = start_gateway(config, tmp_path, f"gateway-{len(started)}", env)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()
        log = gateway.process.stderr()
        assert "Traceback" not in log, f"the gateway logged an unexpected error:\n{log}"


@pytest.fixture
def gateway(gateway_factory: StartGateway, cloud: Fake) -> GatewayProcess:
    """A gateway with no plugins in front of the simulated cloud."""
    return gateway_factory({"cloud": {"base_url": cloud.url}})
