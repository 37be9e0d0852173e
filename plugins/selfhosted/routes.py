"""Which requests the plugin may serve: a request is eligible when it matches a capability route."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from plugins.selfhosted.config import RouteRule


class RouteTable:
    """``(method, path) -> capability``, exact paths (a trailing slash is ignored)."""

    def __init__(self, routes: Mapping[str, Sequence[RouteRule]]) -> None:
        self._table: dict[tuple[str, str], str] = {}
        for capability, rules in routes.items():
            for rule in rules:
                self._table[(rule.method, _normal(rule.path))] = capability

    def __repr__(self) -> str:
        return f"<RouteTable {sorted(self._table)}>"

    def classify(self, method: str, path: str) -> str | None:
        """The capability a request needs, or None when it is not for self-hosted endpoints."""
        return self._table.get((method, _normal(path)))


def _normal(path: str) -> str:
    return path.rstrip("/") or "/"
