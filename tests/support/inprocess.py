"""The gateway under uvicorn on a loopback port, in a thread of the test process, on a ``FakeClock``.

For end-to-end tests where time matters (circuit resets, queue waits, attempt deadlines): the test
moves the gateway's clock with ``advance()`` instead of sleeping. Clients still talk real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn

from gateway.app import Gateway
from gateway.clock import FakeClock
from gateway.document import ConfigDocument
from gateway.loading import AnyPlugin, build_plugins, config_model
from loadtests.processes import free_port

T = TypeVar("T")


class InProcessGateway:
    def __init__(self, document: dict[str, Any], folder: Path, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = folder / "gateway.yaml"
        full = {"server": {"host": "127.0.0.1", "port": self.port}, **document}
        self.config_path.write_text(json.dumps(full, indent=2))
        self.document = ConfigDocument(self.config_path, config_model)
        self.plugins = build_plugins(self.document.config)
        self.app = Gateway(self.document.config, self.plugins, clock=self.clock, document=self.document)
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app, host="127.0.0.1", port=self.port, lifespan="on", log_config=None, access_log=False
            )
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)

    def __repr__(self) -> str:
        return f"<InProcessGateway {self.url} {self.clock!r}>"

    def __enter__(self) -> InProcessGateway:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process gateway did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(15)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.serve())
        self._loop.close()

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` in the gateway's event loop thread and return its result."""

        async def run() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def advance(self, seconds: float) -> None:
        """Move the gateway's clock; timers due by then fire in its event loop."""
        self.call(lambda: self.clock.advance(seconds))

    def plugin(self, name: str) -> AnyPlugin:
        return next(plugin for plugin in self.plugins if plugin.name == name)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30.0), **kwargs)
