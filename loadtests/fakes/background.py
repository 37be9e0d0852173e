"""A fake running on its own event loop in a daemon thread, for synchronous tests and benchmarks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from loadtests.fakes.config import FakeConfig, Kind
from loadtests.fakes.control import FakeControl
from loadtests.fakes.runner import RunningFake, run

START_TIMEOUT = 10.0
_T = TypeVar("_T")


class BackgroundFake:
    """``with BackgroundFake("gpu") as fake: ... fake.url ... fake.control.stats()``."""

    def __init__(
        self,
        kind: Kind | str,
        config: FakeConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str | None = None,
        control_port: int | None = None,
    ) -> None:
        self.kind = Kind(kind)
        self._args = (host, port, config, name, control_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fake-{self.kind}", daemon=True)
        self._fake: RunningFake | None = None

    def __repr__(self) -> str:
        return f"<BackgroundFake {self._fake!r}>"

    @property
    def running(self) -> RunningFake:
        if self._fake is None:
            raise RuntimeError("the fake is not started")
        return self._fake

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def control_url(self) -> str:
        return self.running.control_url

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def control(self) -> FakeControl:
        return FakeControl(self.control_url)

    def start(self) -> BackgroundFake:
        self._thread.start()
        host, port, config, name, control_port = self._args
        starting = run(self.kind, host, port, config, name=name, control_port=control_port)
        self._fake = self._submit(starting).result(START_TIMEOUT)
        return self

    def stop(self) -> None:
        if self._fake is not None:
            self._submit(self._fake.close()).result(START_TIMEOUT)
            self._fake = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT)
        self._loop.close()

    def __enter__(self) -> BackgroundFake:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)
