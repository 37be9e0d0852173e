"""Real server processes (simulated upstreams, gateways) on free loopback ports, stopped for sure.

Shared by the end-to-end tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

READY_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A child process with its output in files, stopped (SIGINT, then SIGKILL) on ``stop()``."""

    def __init__(
        self,
        argv: Sequence[str],
        log_dir: Path,
        name: str,
        env: dict[str, str] | None = None,
        cpus: str | None = None,
    ) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        self._stdout = self.stdout_path.open("wb")
        self._stderr = self.stderr_path.open("wb")
        pinned = ["taskset", "-c", cpus] if cpus else []  # benchmarks pin the gateway to one core
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter running our own modules
            [*pinned, sys.executable, *argv],
            stdout=self._stdout,
            stderr=self._stderr,
            env={**os.environ, **(env or {})},
            cwd=Path(__file__).resolve().parents[1],
        )

    def __repr__(self) -> str:
        return f"<ServerProcess {self.name} pid={self.pid} returncode={self.proc.poll()}>"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, url: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, timeout=1.0).status_code < 500:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} was not ready within {timeout} s:\n{self.output()}")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stdout.close()
        self._stderr.close()
        return self.proc.returncode

    def stdout(self) -> str:
        if not self._stdout.closed:
            self._stdout.flush()
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"


@contextlib.contextmanager
def running(
    argv: Sequence[str], log_dir: Path, name: str, ready_url: str, env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    process = ServerProcess(argv, log_dir, name, env)
    try:
        process.wait_ready(ready_url)
        yield process
    finally:
        process.stop()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from /proc, in KiB (``VmRSS`` now, ``VmHWM`` peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak_rss(pid: int) -> None:
    """Make ``VmHWM`` start again from the current RSS (Linux ``clear_refs`` value 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
