"""Simulated upstreams for the gateway's demo, end-to-end tests, benchmarks and chaos tests.

A fake is a GPU worker (``gpu``) or the cloud image API (``cloud``) that answers the OpenAI
Images API with real PNGs and can misbehave on demand, down to the socket: hang, reset, cut a
body in half, dribble it, refuse connections. It runs on asyncio streams and h11, not on an
ASGI server, precisely so that it can break HTTP where a real upstream would.

Modules, from the socket up::

    server      listening ports (main, optional control), the refuse switch, connection tasks
    connection  one h11 connection: reading, pausing, answering, and the socket-level faults
    upstream    dispatch: control / health / API, with fault cycle, latency, API key, stats
    routes      the API endpoints as pure functions (images, edits, motion transfer, echo, bytes)
    admin       the /_fake/ control routes
    state       config, counters, fault cycle and flap state of one fake
    config      FakeConfig, Kind, FailMode, HealthMode, and their parsers
    stats       request counters and the recent-requests ring
    images      the images JSON body, streamed, padded to an exact size
    png         valid PNG files, padded with a private ancillary chunk
    body        lazily produced bodies of known length
    multipart   multipart/form-data parsing with the stdlib email package
    messages    RequestHead, Response, OpenAI-shaped error bodies
    runner      run(): start a fake in-process
    background  BackgroundFake: a fake in a thread, for synchronous callers
    control     FakeControl: a stdlib-only client for /_fake/
    cli         the command line
"""

from loadtests.fakes.background import BackgroundFake
from loadtests.fakes.config import FailMode, FakeConfig, HealthMode, Kind
from loadtests.fakes.control import FakeControl, FakeControlError
from loadtests.fakes.runner import RunningFake, run

__all__ = [
    "BackgroundFake",
    "FailMode",
    "FakeConfig",
    "FakeControl",
    "FakeControlError",
    "HealthMode",
    "Kind",
    "RunningFake",
    "run",
]
