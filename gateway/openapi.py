"""The admin API's OpenAPI 3.1 document, assembled from what each plugin publishes.

A plugin's ``openapi()`` returns paths relative to its mount and the schemas they reference; the
gateway prefixes the paths with ``/api/v1/admin/<name>`` and adds the error body and the bearer
scheme every admin route shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.introspection import RUNTIME_PATH, RUNTIME_SCHEMA
from gateway.loading import AnyPlugin

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def admin_document(plugins: Sequence[AnyPlugin], version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {"/api/v1/admin/runtime": RUNTIME_PATH}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, "Runtime": RUNTIME_SCHEMA}
    for plugin in plugins:
        published = plugin.openapi()
        for path, operations in published.get("paths", {}).items():
            paths[f"/api/v1/admin/{plugin.name}{path}".rstrip("/") or "/"] = operations
        schemas.update(published.get("schemas", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Influgen gateway admin API", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"admin": []}],
    }
