"""OpenAPI description of the selfhosted admin routes (paths relative to ``/api/v1/admin/selfhosted``)."""

from __future__ import annotations

from typing import Any

from plugins.selfhosted.changes import EndpointCreate, EndpointUpdate, RoutingUpdate

REF = "#/components/schemas/{model}"
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of your last GET; a stale one gets 412 and changes nothing.",
    "schema": {"type": "string"},
}
ENDPOINT_ID = {"name": "endpoint_id", "in": "path", "required": True, "schema": {"type": "string"}}
OBJECT = {"type": "object"}


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (RoutingUpdate, EndpointCreate, EndpointUpdate):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {"paths": _paths(), "schemas": schemas}


def _paths() -> dict[str, Any]:
    mutation = [IF_MATCH]
    return {
        "/": {
            "get": _operation(
                "The overview: routing, settings, queue, totals, endpoints, routing log",
                None,
                {"200": OBJECT},
            )
        },
        "/routing": {
            "put": _operation(
                "Turn routing on or off and set its percentage", "RoutingUpdate", {"200": OBJECT}, mutation
            )
        },
        "/refresh": {
            "post": _operation("Probe every endpoint now and return their health", None, {"200": OBJECT})
        },
        "/endpoints": {
            "post": _operation(
                "Add an endpoint (probed at once)", "EndpointCreate", {"201": OBJECT, "409": None}, mutation
            )
        },
        "/endpoints/{endpoint_id}": {
            "parameters": [ENDPOINT_ID],
            "get": _operation("One endpoint", None, {"200": OBJECT, "404": None}),
            "patch": _operation(
                "Change some of an endpoint's fields",
                "EndpointUpdate",
                {"200": OBJECT, "404": None, "409": None},
                mutation,
            ),
            "delete": _operation(
                "Remove an endpoint; its requests in flight complete",
                None,
                {"204": None, "404": None},
                mutation,
            ),
        },
    }


def _operation(
    summary: str, body: str | None, responses: dict[str, Any], parameters: list[Any] | None = None
) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for status, schema in responses.items():
        content = {"application/json": {"schema": schema}} if schema is not None and status != "204" else None
        described[status] = {
            "description": summary if status.startswith("2") else "error",
            **({"content": content} if content else {}),
        }
    for status in ("400", "401", "403", "412", "413", "422") if body else ("401", "403"):
        described.setdefault(
            status,
            {
                "description": "error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    for status, response in described.items():
        if not status.startswith("2") and "content" not in response:
            response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    operation: dict[str, Any] = {"summary": summary, "responses": described}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=body)}}},
        }
    return operation
