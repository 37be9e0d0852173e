"""The listening side of a fake: a main port that can be closed and reopened, an optional control port.

Closing the main listener (the ``refuse`` fault) leaves the established connections alone, as a
process that stopped accepting would; new connections then get ECONNREFUSED.
"""

from __future__ import annotations

import asyncio

from loadtests.fakes.connection import Connection, Handler
from loadtests.fakes.messages import RequestHead, error_response

CLOSE_TIMEOUT = 2.0


class FakeServer:
    """Accepts connections and gives each to a ``Connection`` running ``handler``."""

    def __init__(self, host: str, port: int, control_port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.control_port = control_port
        self._handler: Handler = _not_started
        self._main: asyncio.Server | None = None
        self._control: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._main_connections: set[Connection] = set()
        self._connections: set[Connection] = set()

    def __repr__(self) -> str:
        state = "accepting" if self.accepting else "refusing"
        return (
            f"<FakeServer {self.host}:{self.port} {state} control={self.control_port} "
            f"open={self.open_connections} tasks={len(self._tasks)}>"
        )

    @property
    def accepting(self) -> bool:
        return self._main is not None

    @property
    def can_refuse(self) -> bool:
        return self.control_port is not None

    @property
    def open_connections(self) -> int:
        """Connections open on the main port, except those that only carried control requests."""
        return sum(1 for connection in self._main_connections if connection.counts_as_open)

    async def start(self, handler: Handler) -> None:
        """Bind the ports; a port of 0 is replaced by the one the system chose."""
        self._handler = handler
        await self.set_accepting(True)
        if self.control_port is not None:
            self._control = await asyncio.start_server(self._serve_control, self.host, self.control_port)
            self.control_port = _bound_port(self._control)

    async def set_accepting(self, accepting: bool) -> None:
        if accepting and self._main is None:
            self._main = await asyncio.start_server(self._serve_main, self.host, self.port)
            self.port = _bound_port(self._main)
        elif not accepting and self._main is not None:
            self._main.close()
            await self._main.wait_closed()
            self._main = None

    async def close(self) -> None:
        """Stop listening and end every connection, including hung ones."""
        for server in (self._main, self._control):
            if server is not None:
                server.close()
        self._main = self._control = None
        # Aborting lets each connection task finish on its own (reads see EOF, writes fail).
        for connection in self._connections:
            connection.abort()
        tasks = list(self._tasks)
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)

    async def _serve_main(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(reader, writer, on_main=True)
        self._main_connections.add(connection)
        try:
            await self._serve(connection)
        finally:
            self._main_connections.discard(connection)

    async def _serve_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._serve(Connection(reader, writer, on_main=False))

    async def _serve(self, connection: Connection) -> None:
        # Each connection runs in its own task (asyncio made it); keep it so close() can end it.
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._connections.add(connection)
        try:
            await connection.serve(self._handler)
        except asyncio.CancelledError:
            # Only close() or loop shutdown cancels these tasks, and Python 3.11's stream callback
            # calls task.exception() on them, which raises (and logs an error) for a cancelled task.
            pass
        finally:
            self._connections.discard(connection)
            if task is not None:
                self._tasks.discard(task)


async def _not_started(head: RequestHead, exchange: Connection) -> None:
    await exchange.read_body()
    await exchange.send(error_response(503, "fake upstream not started", "server_error"))


def _bound_port(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])
