"""The REST API under ``/api/v1/admin/selfhosted`` (behind the admin token, see gateway/admin.py).

Every change is an edit of gateway.yaml: checked, saved atomically, then applied (gateway/document.py),
so what runs is always what the file says and survives a restart. Rejected requests change nothing.
A mutating request may carry ``If-Match`` with the ETag of its last GET; a stale one gets 412.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ruamel.yaml.comments import CommentedMap
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from config import ConfigError
from gateway.errors import BadRequest, BodyTooLarge, Conflict, NotFound, Unprocessable
from plugins.selfhosted import changes as edits
from plugins.selfhosted.changes import EndpointCreate, EndpointUpdate, RoutingUpdate
from plugins.selfhosted.config import slug
from plugins.selfhosted.overview import describe, describe_endpoint, parse_log_limit
from plugins.selfhosted.urlpolicy import UrlRefused, check_url

if TYPE_CHECKING:
    from plugins.selfhosted.plugin import SelfHostedPlugin

BODY_LIMIT = 64 * 1024


def routes(plugin: SelfHostedPlugin) -> Sequence[BaseRoute]:
    api = AdminApi(plugin)
    return [
        Route("/", api.overview, methods=["GET"]),
        Route("/routing", api.set_routing, methods=["PUT"]),
        Route("/refresh", api.refresh, methods=["POST"]),
        Route("/endpoints", api.create, methods=["POST"]),
        Route("/endpoints/{endpoint_id}", api.read, methods=["GET"]),
        Route("/endpoints/{endpoint_id}", api.update, methods=["PATCH"]),
        Route("/endpoints/{endpoint_id}", api.delete, methods=["DELETE"]),
    ]


class AdminApi:
    def __init__(self, plugin: SelfHostedPlugin) -> None:
        self.plugin = plugin

    def __repr__(self) -> str:
        return f"<AdminApi {self.plugin!r}>"

    async def overview(self, request: Request) -> Response:
        limit = parse_log_limit(request.query_params.get("log_limit"))
        return self._json(describe(self.plugin, limit))

    async def set_routing(self, request: Request) -> Response:
        update: RoutingUpdate = edits.parse(RoutingUpdate, await _body(request))
        before = self.plugin.config.routing
        await self._edit(request, lambda section: edits.set_routing(section, update))
        changed = {
            field: [getattr(before, field), getattr(update, field)]
            for field in update.model_fields_set
            if getattr(update, field) is not None and getattr(update, field) != getattr(before, field)
        }
        await self._audit(request, "routing.update", "routing", changed)
        routing = {"enabled": self.plugin.routing_enabled, "routing_percentage": self.plugin.split.percentage}
        return self._json({"routing": routing})

    async def refresh(self, request: Request) -> Response:
        results = await self.plugin.running.health.probe_all()
        health = [
            {
                "id": r.endpoint_id,
                "health": "healthy" if r.healthy else "unhealthy",
                "error": r.error,
                "checked_at": r.at,
            }
            for r in results
        ]
        return self._json({"endpoints": health})

    async def create(self, request: Request) -> Response:
        fields: EndpointCreate = edits.parse(EndpointCreate, await _body(request))
        values = edits.requested(fields, None)
        await self._check_url(values["url"])
        created: dict[str, str] = {}

        def change(section: CommentedMap) -> None:
            taken = _raw_ids(section)
            _refuse_duplicate_name(section, values["name"], skip=None)
            endpoint_id = values.get("id") or _free(slug(values["name"]), taken)
            if endpoint_id in taken:
                raise Conflict(
                    f"an endpoint with id {endpoint_id!r} already exists", param="id", code="duplicate_id"
                )
            created["id"] = endpoint_id
            edits.add_endpoint(section, {**values, "id": endpoint_id})

        await self._edit(request, change)
        await self._audit(request, "endpoint.create", f"endpoints/{created['id']}", edits.masked(values))
        location = f"/api/v1/admin/selfhosted/endpoints/{created['id']}"
        return self._json(self._endpoint(created["id"]), status=201, headers={"Location": location})

    async def read(self, request: Request) -> Response:
        return self._json(self._endpoint(request.path_params["endpoint_id"]))

    async def update(self, request: Request) -> Response:
        endpoint_id = request.path_params["endpoint_id"]
        current = self._config_of(endpoint_id)
        values = edits.requested(edits.parse(EndpointUpdate, await _body(request)), current)
        if "url" in values:
            await self._check_url(values["url"])

        def change(section: CommentedMap) -> None:
            index = _index(section, endpoint_id)
            entry = section["endpoints"][index]
            if "url" in values and entry.get("api_key") and "api_key" not in values:
                raise Unprocessable(
                    "send the api_key again when changing the url (a stored key never follows a new host)",
                    param="api_key",
                    code="api_key_required",
                )
            if "name" in values:
                _refuse_duplicate_name(section, values["name"], skip=index)
            edits.update_endpoint(section, index, endpoint_id, values)

        await self._edit(request, change)
        await self._audit(
            request, "endpoint.update", f"endpoints/{endpoint_id}", edits.masked(values, current)
        )
        return self._json(self._endpoint(endpoint_id))

    async def delete(self, request: Request) -> Response:
        endpoint_id = request.path_params["endpoint_id"]
        current = self._config_of(endpoint_id)
        await self._edit(
            request, lambda section: edits.remove_endpoint(section, _index(section, endpoint_id))
        )
        await self._audit(
            request, "endpoint.delete", f"endpoints/{endpoint_id}", {"name": [current.name, None]}
        )
        return Response(status_code=204, headers={"ETag": self.plugin.running.context.settings.etag})

    async def _edit(self, request: Request, change: Callable[[CommentedMap], None]) -> None:
        settings = self.plugin.running.context.settings
        try:
            await settings.edit(change, if_match=request.headers.get("if-match"))
        except ConfigError as error:
            problem = error.problems[0]
            field = problem.path.split(".config.", 1)[-1] or None
            raise Unprocessable(
                str(problem) if field is None else f"{field}: {problem.message}", param=_api_param(field)
            ) from None

    async def _check_url(self, url: str) -> None:
        try:
            await check_url(url, self.plugin.config.allowed_networks)
        except UrlRefused as refused:
            raise Unprocessable(f"url: {refused}", param="url", code="url_refused") from None

    async def _audit(self, request: Request, action: str, target: str, changes: dict[str, Any]) -> None:
        context = self.plugin.running.context
        client = request.client.host if request.client else None
        request_id = request.headers.get("x-request-id")
        await context.audit.record(
            action, f"selfhosted/{target}", changes, client=client, request_id=request_id
        )

    def _config_of(self, endpoint_id: str) -> Any:
        endpoint = self.plugin.running.store.endpoint(endpoint_id)
        if endpoint is None:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", param="id", code="endpoint_not_found")
        return endpoint.config

    def _endpoint(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.plugin.running.store.endpoint(endpoint_id)
        if endpoint is None:
            raise NotFound(f"no endpoint with id {endpoint_id!r}", param="id", code="endpoint_not_found")
        return describe_endpoint(endpoint, self.plugin.running.context.clock)

    def _json(self, document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        etag = {"ETag": self.plugin.running.context.settings.etag}
        return JSONResponse(document, status_code=status, headers={**etag, **(headers or {})})


async def _body(request: Request) -> Any:
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > BODY_LIMIT:
        raise BodyTooLarge(f"an admin request body is at most {BODY_LIMIT} bytes")
    chunks: list[bytes] = []
    async for chunk in request.stream():
        chunks.append(chunk)
        if sum(map(len, chunks)) > BODY_LIMIT:
            raise BodyTooLarge(f"an admin request body is at most {BODY_LIMIT} bytes")
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None


def _raw_ids(section: CommentedMap) -> list[str]:
    """The ids of the file's endpoints, derived as the config does (explicit first, then from names)."""
    entries = list(section.get("endpoints") or [])
    taken = {str(entry["id"]) for entry in entries if entry.get("id")}
    ids = []
    for entry in entries:
        if entry.get("id"):
            ids.append(str(entry["id"]))
        else:
            derived = _free(slug(str(entry.get("name", ""))), taken)
            taken.add(derived)
            ids.append(derived)
    return ids


def _free(base: str, taken: set[str] | list[str]) -> str:
    candidate, counter = base, 2
    while candidate in taken:
        candidate, counter = f"{base}-{counter}", counter + 1
    return candidate


def _index(section: CommentedMap, endpoint_id: str) -> int:
    try:
        return _raw_ids(section).index(endpoint_id)
    except ValueError:
        raise NotFound(
            f"no endpoint with id {endpoint_id!r}", param="id", code="endpoint_not_found"
        ) from None


def _refuse_duplicate_name(section: CommentedMap, name: str, skip: int | None) -> None:
    for index, entry in enumerate(section.get("endpoints") or []):
        if index != skip and str(entry.get("name")) == name:
            raise Conflict(f"an endpoint named {name!r} already exists", param="name", code="duplicate_name")


def _api_param(field: str | None) -> str | None:
    """``endpoints[2].max_concurrency`` -> ``max_concurrency``: the body's own field name."""
    if field is None:
        return None
    return field.split(".", 1)[1] if field.startswith("endpoints[") and "." in field else field
