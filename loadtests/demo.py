"""``python -m loadtests.demo``: the gateway, two simulated GPU endpoints and a simulated cloud.

What ``make demo`` runs. Each part is its own process on loopback; Ctrl-C stops them all, and if one
dies the others are stopped too. The ports match the repository's gateway.yaml.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Part:
    name: str
    argv: tuple[str, ...]
    ready_url: str


def parts(config: Path, gateway_port: int, cloud_port: int, gpu_ports: Sequence[int]) -> list[Part]:
    def fake(kind: str, name: str, port: int, *extra: str) -> Part:
        argv = ("-m", "loadtests.fakes", kind, "--port", str(port), "--name", name, *extra)
        return Part(name, argv, f"http://{HOST}:{port}/_fake/stats")

    gateway = Part(
        "gateway",
        ("-m", "gateway", "serve", "--config", str(config), "--port", str(gateway_port)),
        f"http://{HOST}:{gateway_port}/api/v1/health",
    )
    # GPUs take a couple of seconds per image, like a real diffusion model; the cloud a bit less.
    gpus = [fake("gpu", f"gpu-{index + 1}", port, "--latency", "1.5") for index, port in enumerate(gpu_ports)]
    return [fake("cloud", "cloud", cloud_port, "--latency", "0.8"), *gpus, gateway]


def wait_ready(process: subprocess.Popen[bytes], part: Part) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{part.name} exited with code {process.returncode} while starting")
        # A loopback URL this module built, not user input.
        with contextlib.suppress(OSError), urllib.request.urlopen(part.ready_url, timeout=1):  # noqa: S310
            return
        time.sleep(0.1)
    raise RuntimeError(f"{part.name} was not ready within {READY_TIMEOUT:.0f} s")


@contextlib.contextmanager
def started(all_parts: Sequence[Part], env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for part in all_parts:
            process = subprocess.Popen([sys.executable, *part.argv], env=env)  # noqa: S603 - our own modules
            processes.append(process)
            wait_ready(process, part)
        yield processes
    finally:
        stop(processes)


def stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in reversed(processes):
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def banner(gateway_url: str, token: str) -> str:
    return f"""
================================================================================
 The gateway is running at {gateway_url}
   simulated cloud: http://{HOST}:9100    simulated GPUs: http://{HOST}:9101, http://{HOST}:9102
   admin token (this run only): {token}

 Half of the image requests go to the simulated GPUs, the rest to the simulated cloud.
 Generate an image with curl (X-Gateway-Route says who answered):
   curl -si {gateway_url}/v1/images/generations -H 'Content-Type: application/json' \\
        -d '{{"model": "gpt-image-1", "prompt": "a lighthouse at dawn"}}' | grep -i x-gateway-route

 Or with the official openai SDK:
   from openai import OpenAI
   client = OpenAI(base_url="{gateway_url}/v1", api_key="sk-demo")
   image = client.images.generate(model="gpt-image-1", prompt="a lighthouse at dawn")

 The self-hosted overview (health, load, circuits, routing log):
   curl -s {gateway_url}/api/v1/admin/selfhosted -H 'Authorization: Bearer {token}'

 Press Ctrl-C to stop everything.
================================================================================
"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.demo", description=__doc__)
    parser.add_argument("--config", type=Path, default=Path("gateway.yaml"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8080")))
    args = parser.parse_args(argv)
    token = os.environ.get("GATEWAY_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    env = {**os.environ, "GATEWAY_ADMIN_TOKEN": token, "PYTHONUNBUFFERED": "1"}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with started(parts(args.config, args.port, 9100, (9101, 9102)), env) as processes:
            print(banner(f"http://{HOST}:{args.port}", token), flush=True)
            while all(process.poll() is None for process in processes):
                time.sleep(0.5)
            print("a demo process stopped unexpectedly; stopping the rest", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 0
    except RuntimeError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
