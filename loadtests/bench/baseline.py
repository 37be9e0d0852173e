"""A plain reverse proxy choosing an upstream at random or in turn: the baselines of the utilisation
benchmark (random choice is LiteLLM's default "simple-shuffle"; round robin is what nginx does).

No concurrency limit, no queue, no health checks, no circuit breaker: exactly what the gateway's
self-hosted plugin adds is missing. ``python -m loadtests.bench.baseline --policy random --port P URL...``
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections.abc import AsyncIterator, Callable, Sequence

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, Router


def chooser(policy: str, upstreams: Sequence[str]) -> Callable[[], str]:
    if policy == "random":
        rng = random.Random(1)
        return lambda: rng.choice(upstreams)
    turn = itertools.cycle(upstreams)
    return lambda: next(turn)


def build(policy: str, upstreams: Sequence[str]) -> Router:
    choose = chooser(policy, upstreams)
    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None), timeout=600
    )

    async def proxy(request: Request) -> Response:
        target = choose() + request.url.path
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in (b"host", b"content-length")]
        upstream = await client.send(
            client.build_request("POST", target, headers=headers, content=await request.body()), stream=True
        )

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(
            body(), status_code=upstream.status_code, headers={"x-gateway-route": target}
        )

    async def ready(request: Request) -> Response:
        return JSONResponse({"policy": policy})

    return Router([Route("/ready", ready), Route("/{path:path}", proxy, methods=["POST"])])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.baseline")
    parser.add_argument("--policy", choices=["random", "round_robin"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("upstreams", nargs="+")
    args = parser.parse_args(argv)
    uvicorn.run(
        build(args.policy, args.upstreams),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


if __name__ == "__main__":
    main()
