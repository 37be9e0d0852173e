"""Starting a fake in-process: ``await run(...)`` gives a ``RunningFake`` to close when done."""

from __future__ import annotations

from types import TracebackType

from loadtests.fakes.config import FakeConfig, Kind
from loadtests.fakes.server import FakeServer
from loadtests.fakes.state import FakeState
from loadtests.fakes.stats import RECENT_LIMIT
from loadtests.fakes.upstream import FakeUpstream


class RunningFake:
    """A started fake: its addresses, its live state, and ``close()``."""

    def __init__(self, server: FakeServer, upstream: FakeUpstream) -> None:
        self.server = server
        self.upstream = upstream

    def __repr__(self) -> str:
        return f"<RunningFake {self.state.name} {self.url} {self.server!r}>"

    @property
    def state(self) -> FakeState:
        return self.upstream.state

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://{_url_host(self.server.host)}:{self.server.port}"

    @property
    def control_url(self) -> str:
        """Where ``/_fake/`` is served: the control port if there is one, else the main port."""
        port = self.server.control_port if self.server.control_port is not None else self.server.port
        return f"http://{_url_host(self.server.host)}:{port}"

    async def close(self) -> None:
        await self.server.close()

    async def __aenter__(self) -> RunningFake:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def run(
    kind: Kind | str,
    host: str = "127.0.0.1",
    port: int = 0,
    config: FakeConfig | None = None,
    *,
    name: str | None = None,
    control_port: int | None = None,
    recent_limit: int = RECENT_LIMIT,
) -> RunningFake:
    """Start a fake of ``kind`` listening on ``host:port`` (0: any free port)."""
    kind = Kind(kind)
    server = FakeServer(host, port, control_port)
    upstream = FakeUpstream(FakeState(kind, name or "", config or FakeConfig(), server, recent_limit))
    await server.start(upstream.handle)
    # The default name embeds the port, which is only known once bound.
    upstream.state.name = name or f"{kind.value}-{server.port}"
    await upstream.state.sync_listener()
    return RunningFake(server, upstream)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
