"""gateway.yaml as the source of truth: the running configuration is always what the file says.

An admin change is an edit of the file's round-trip tree: validated as a whole, written atomically
(comments, order and ``${ENV}`` references kept; mode 0600 once it holds a secret), and only then
applied. A hand edit of the file is picked up by ``reload()``; an invalid one is refused, the
running configuration stays, and ``error`` says what is wrong until a valid edit arrives.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Awaitable, Callable, Mapping
from hashlib import sha256
from pathlib import Path
from typing import Any

import anyio

from config import ConfigError, GatewayConfig, PluginResolver, Problem, parse_config
from config.atomic import atomic_write, stale_temporaries
from config.roundtrip import RoundTrip, holds_literal_secret, load_yaml
from gateway.errors import GatewayError, PreconditionFailed

logger = logging.getLogger("gateway.config")

Listener = Callable[[GatewayConfig, GatewayConfig], Awaitable[None]]
SECRET_MODE = 0o600


class WriteFailed(GatewayError):
    status = 500
    type = "server_error"


class ConfigDocument:
    def __init__(
        self, path: Path, resolve_plugin: PluginResolver, environ: Mapping[str, str] | None = None
    ) -> None:
        self.path = path
        self._resolve = resolve_plugin
        self._environ = environ
        text = self._read()
        self._roundtrip = RoundTrip(text)
        self._text = text
        tree = load_yaml(text, source=str(path))
        self.config = parse_config(tree, resolve_plugin, self.environ, source=str(path))
        self.error: ConfigError | None = None
        """Why the last hand edit was refused, until a valid one arrives."""
        self.restart_required: list[str] = []
        """Keys changed in the file that the running gateway applies only after a restart."""
        self._signature = _signature(path)
        self._listeners: list[Listener] = []
        self._lock = anyio.Lock()
        for leftover in stale_temporaries(path):
            logger.warning("removing %s, left by an interrupted write", leftover)
            leftover.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<ConfigDocument {self.path} etag={self.etag} error={self.error is not None}>"

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    @property
    def etag(self) -> str:
        return '"' + sha256(self._text.encode()).hexdigest()[:20] + '"'

    def subscribe(self, listener: Listener) -> None:
        """``listener(old, new)`` runs after every change, whoever made it."""
        self._listeners.append(listener)

    async def edit(self, change: Callable[[Any], None], if_match: str | None = None) -> GatewayConfig:
        """Apply ``change`` to a copy of the tree; validate, write, then adopt. Raises
        ``PreconditionFailed`` (``if_match`` is stale), ``ConfigError`` (the edit is invalid) or
        ``WriteFailed``; in every case nothing changed."""
        async with self._lock:
            if not matches(if_match, self.etag):
                raise PreconditionFailed(
                    "the configuration changed since you read it: reload and try again", code="etag_mismatch"
                )
            # A fresh parse of the current text, not a deep copy: ruamel's copies drop some comments.
            tree = load_yaml(self._text)
            change(tree)
            config = parse_config(tree, self._resolve, self.environ, source=str(self.path))
            text = self._roundtrip.dump(tree)
            try:
                await anyio.to_thread.run_sync(atomic_write, self.path, text, self._mode(tree))
            except OSError as exc:
                logger.error("could not save %s: %s", self.path, exc)
                raise WriteFailed(
                    f"the change was not applied: gateway.yaml could not be saved ({exc.strerror})",
                    code="config_write_failed",
                ) from exc
            await self._adopt(text, config)
            return config

    async def reload(self) -> bool:
        """Adopt a hand edit of the file, if there is a valid one; True when something changed."""
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        async with self._lock:
            self._signature = signature
            try:
                text = self._read()
                if text == self._text:
                    self.error = None
                    return False
                tree = load_yaml(text, source=str(self.path))
                config = parse_config(tree, self._resolve, self.environ, source=str(self.path))
            except ConfigError as error:
                self._refuse(error)
                return False
            self.error = None
            logger.info("gateway.yaml changed on disk: applying it")
            await self._adopt(text, config)
            return True

    def _refuse(self, error: ConfigError) -> None:
        self.error = error
        logger.error("gateway.yaml edit refused, the running configuration stays:\n%s", error.describe())

    async def _adopt(self, text: str, config: GatewayConfig) -> None:
        old = self.config
        self._text, self.config = text, config
        self._signature = _signature(self.path)
        for listener in self._listeners:
            await listener(old, config)

    def _read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([Problem("", f"cannot read the file: {exc}")], str(self.path)) from exc

    def _mode(self, tree: Any) -> int:
        if holds_literal_secret(tree):
            return SECRET_MODE
        try:
            return stat.S_IMODE(self.path.stat().st_mode)
        except OSError:
            return 0o644


def matches(if_match: str | None, etag: str) -> bool:
    """RFC 9110 If-Match: absent or ``*`` matches; otherwise one of the listed tags must be ours."""
    if if_match is None or if_match.strip() == "*":
        return True
    tags = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    return etag in tags


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)
