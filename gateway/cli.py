"""``influgen-gateway serve|check --config gateway.yaml`` (also ``python -m gateway``)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from config import ConfigError
from gateway.app import Gateway
from gateway.document import ConfigDocument
from gateway.loading import AnyPlugin, build_plugins, config_model
from gateway.protocol import http_protocol
from gateway.telemetry import exporter_problem

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# In-flight requests may take a GPU's 90 s; give them that long to finish on SIGTERM.
GRACEFUL_SHUTDOWN_SECONDS = 95


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        document, plugins = load(Path(args.config))
    except ConfigError as error:
        print(error.describe(), file=sys.stderr)
        return 1
    config = document.config
    if args.command == "check":
        names = ", ".join(plugin.name for plugin in plugins) or "none"
        print(f"{args.config}: OK (cloud {config.cloud.base_url}; plugins: {names})")
        return 0
    serve(document, plugins, host=args.host, port=args.port)
    return 0


def load(path: Path) -> tuple[ConfigDocument, list[AnyPlugin]]:
    """Everything ``check`` verifies and ``serve`` needs before it binds a port."""
    # Custom adapters may live next to gateway.yaml, the way an app module lives next to its server.
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    document = ConfigDocument(path, config_model)
    problem = exporter_problem(document.config.telemetry)
    if problem is not None:
        raise ConfigError([problem], str(path))
    try:
        return document, build_plugins(document.config)
    except ConfigError as error:
        raise ConfigError(error.problems, str(path)) from error


def serve(document: ConfigDocument, plugins: list[AnyPlugin], *, host: str | None, port: int | None) -> None:
    config = document.config
    level = config.telemetry.log_level.upper()
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    # httpx logs every request's full URL at INFO; a query string may hold a credential.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    server = uvicorn.Server(
        uvicorn.Config(
            Gateway(config, plugins, document=document),
            host=host or config.server.host,
            port=port or config.server.port,
            loop="uvloop",
            http=http_protocol(config.limits),
            lifespan="on",
            log_config=None,
            log_level=level.lower(),
            access_log=False,
            server_header=False,
            # The gateway is the edge: a client's own X-Forwarded-For must not change its address.
            proxy_headers=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    # uvicorn re-raises the Ctrl-C it handled once shutdown is complete; nothing is left to do.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="influgen-gateway",
        description="Image generation gateway: self-hosted GPUs first, the cloud for the rest.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the gateway")
    check_cmd = commands.add_parser("check", help="validate a config file and exit (0 valid, 1 invalid)")
    for command in (serve_cmd, check_cmd):
        command.add_argument("--config", "-c", default="gateway.yaml", help="path to gateway.yaml")
    serve_cmd.add_argument("--host", help="override server.host")
    serve_cmd.add_argument("--port", type=int, help="override server.port")
    return parser
