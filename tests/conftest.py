"""Shared fixtures: simulated upstreams (one process per session) and gateways (one per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Fake, GatewayProcess, restart_gateway, start_fake, start_gateway


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


class Gateways:
    """Gateways a test starts from config dicts; each is stopped, and its log checked, at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[GatewayProcess] = []

    def __call__(self, config: dict[str, Any], env: dict[str, str] | None = None) -> GatewayProcess:
        gateway = start_gateway(config, self.folder, f"gateway-{len(self.started)}", env)
        self.started.append(gateway)
        return gateway

    def restart(self, gateway: GatewayProcess) -> GatewayProcess:
        """A new process on the same config file and port (what survives a restart survives this)."""
        again = restart_gateway(gateway, f"gateway-{len(self.started)}")
        self.started.append(again)
        return again

    def stop_all(self) -> None:
        for gateway in self.started:
            gateway.stop()
            log = gateway.process.stderr()
            assert "Traceback" not in log, f"the gateway logged an unexpected error:\n{log}"


StartGateway = Gateways


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Gateways]:
    gateways = Gateways(tmp_path)
    yield gateways
    gateways.stop_all()


@pytest.fixture
def gateway(gateway_factory: StartGateway, cloud: Fake) -> GatewayProcess:
    """A gateway with no plugins in front of the simulated cloud."""
    return gateway_factory({"cloud": {"base_url": cloud.url}})
