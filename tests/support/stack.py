"""The processes an end-to-end test talks to: simulated upstreams and gateways, on loopback."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtests.fakes import FakeControl
from loadtests.processes import ServerProcess, free_port

ADMIN_TOKEN = "test-admin-token-0123456789"  # noqa: S105 - a test fixture, not a credential


@dataclass
class Fake:
    url: str
    control: FakeControl
    process: ServerProcess

    def stats(self) -> dict[str, Any]:
        return self.control.stats()

    def restore(self) -> None:
        """Back to a well-behaved upstream with zeroed counters."""
        self.control.configure(latency=0, response_bytes=None, fail="none", health="ok", slow_rate=65536)
        self.control.reset()


def start_fake(kind: str, log_dir: Path, name: str, *extra: str, control_port: bool = False) -> Fake:
    """A simulated upstream; with ``control_port`` its control routes get a port of their own, so
    it can refuse connections on its main port (``fail: refuse``) and still be steered."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    control_url = url
    if control_port:
        second = free_port()
        extra = (*extra, "--control-port", str(second))
        control_url = f"http://127.0.0.1:{second}"
    process = ServerProcess(
        ["-m", "loadtests.fakes", kind, "--port", str(port), "--name", name, *extra], log_dir, name
    )
    process.wait_ready(f"{control_url}/_fake/stats")
    return Fake(url, FakeControl(control_url), process)


@dataclass
class GatewayProcess:
    url: str
    config_path: Path
    process: ServerProcess
    env: dict[str, str] | None = None
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def client(self, **kwargs: Any) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30.0), **kwargs)
        self.clients.append(client)
        return client

    def admin(self) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def stop(self) -> int:
        for client in self.clients:
            client.close()
        return self.process.stop()


def start_gateway(
    config: dict[str, Any], log_dir: Path, name: str, env: dict[str, str] | None = None
) -> GatewayProcess:
    """Write ``config`` (JSON is YAML) with a free port and run ``python -m gateway serve`` on it."""
    port = free_port()
    document = {"server": {"host": "127.0.0.1", "port": port}, **config}
    path = log_dir / f"{name}.yaml"
    path.write_text(json.dumps(document, indent=2))
    url = f"http://127.0.0.1:{port}"
    process = ServerProcess(["-m", "gateway", "serve", "--config", str(path)], log_dir, name, env)
    process.wait_ready(f"{url}/api/v1/health")
    return GatewayProcess(url, path, process, env)


def restart_gateway(gateway: GatewayProcess, name: str) -> GatewayProcess:
    """Stop ``gateway`` and start a new process on the same config file, port and environment."""
    gateway.stop()
    argv = ["-m", "gateway", "serve", "--config", str(gateway.config_path)]
    process = ServerProcess(argv, gateway.config_path.parent, name, gateway.env)
    process.wait_ready(f"{gateway.url}/api/v1/health")
    return GatewayProcess(gateway.url, gateway.config_path, process, gateway.env)
