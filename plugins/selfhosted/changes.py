"""What an admin may send, and how a change is written into the plugin's section of gateway.yaml.

Request bodies are strict (``"50"`` is not a number, ``1`` is not ``true``); every rejection names
the field. Edits work on the raw YAML mapping, so untouched keys keep their comments and
``${ENV}`` references.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from config.messages import problems_from
from config.roundtrip import append, new_mapping, remove
from config.values import Between, Label
from gateway.errors import BadRequest, Unprocessable
from plugins.selfhosted.config import CAPABILITIES, EndpointConfig

MASK = "********"
"""How a stored key is shown; sending it back in a PATCH keeps the stored key."""

StrictFloat = Annotated[float, Strict()]
Name = Annotated[Label, Strict()]
Key = Annotated[str, Strict(), Field(max_length=4096, pattern=r"^[\x21-\x7e]*$")]
Capabilities = Annotated[list[Literal["text-to-image", "image-to-image"]], Field(min_length=1, max_length=2)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoutingUpdate(Body):
    enabled: Annotated[bool, Strict()] | None = None
    routing_percentage: Annotated[StrictFloat, Between(0, 100)] | None = None


class EndpointUpdate(Body):
    name: Name | None = None
    url: Annotated[str, Strict(), Field(min_length=1, max_length=2048)] | None = None
    api_key: Key | None = None
    """Write-only. Absent or ``"********"``: keep the stored key; null or empty: remove it."""
    status: Literal["active", "draining", "disabled"] | None = None
    max_concurrency: Annotated[int, Strict(), Field(ge=1, le=100_000)] | None = None
    capabilities: Capabilities | None = None
    weight: Annotated[StrictFloat, Field(gt=0, le=1_000_000)] | None = None


class EndpointCreate(EndpointUpdate):
    id: Annotated[str, Strict(), Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")] | None = None
    name: Name
    url: Annotated[str, Strict(), Field(min_length=1, max_length=2048)]


def parse(model: type[Body], document: Any) -> Any:
    """``document`` (decoded JSON) as ``model``, or 400/422 naming the bad field."""
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problem = problems_from(error, model=model)[0]
        raise Unprocessable(f"{problem.path}: {problem.message}", param=problem.path or None) from None


def requested(update: EndpointUpdate, current: EndpointConfig | None) -> dict[str, Any]:
    """The fields ``update`` changes, as they go into the file (``None``: remove the key)."""
    changes: dict[str, Any] = {}
    for field in update.model_fields_set:
        value = getattr(update, field)
        if field == "api_key":
            if value == MASK:
                continue  # the placeholder the admin got back: keep the stored key
            value = value or None
        if field == "capabilities" and value is not None and len(set(value)) != len(value):
            raise Unprocessable("capabilities: must not repeat a capability", param="capabilities")
        if current is None or field == "api_key" or getattr(current, field) != _as_config(field, value):
            changes[field] = value
    return changes


def _plain(value: Any) -> Any:
    """``75.0`` is written ``75``, as a person would have written it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _as_config(field: str, value: Any) -> Any:
    return tuple(value) if field == "capabilities" and value is not None else value


def set_routing(section: CommentedMap, update: RoutingUpdate) -> None:
    routing = section.get("routing")
    if not isinstance(routing, CommentedMap):
        routing = section["routing"] = CommentedMap()
    for field in update.model_fields_set:
        value = getattr(update, field)
        if value is not None:
            routing[field] = _plain(value)


def add_endpoint(section: CommentedMap, fields: Mapping[str, Any]) -> None:
    endpoints = section.get("endpoints")
    if not isinstance(endpoints, CommentedSeq):
        endpoints = section["endpoints"] = CommentedSeq()
    order = ("id", "name", "url", "api_key", "status", "max_concurrency", "capabilities", "weight")
    append(endpoints, new_mapping({key: _plain(fields[key]) for key in order if fields.get(key) is not None}))


def update_endpoint(section: CommentedMap, index: int, endpoint_id: str, changes: Mapping[str, Any]) -> None:
    entry = section["endpoints"][index]
    if "id" not in entry:
        entry.insert(0, "id", endpoint_id)  # pin the derived id: a new name must not change it
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        elif isinstance(value, list):
            entry[key] = new_mapping({key: value})[key]
        else:
            entry[key] = _plain(value)


def remove_endpoint(section: CommentedMap, index: int) -> None:
    remove(section["endpoints"], index)


def masked(changes: Mapping[str, Any], before: EndpointConfig | None = None) -> dict[str, Any]:
    """``changes`` for the audit log: ``{field: [old, new]}``, with any key shown as the mask."""
    result: dict[str, Any] = {}
    for field, new in changes.items():
        old = getattr(before, field, None) if before is not None else None
        if field == "api_key":
            result[field] = [MASK if old else None, MASK if new else None]
        else:
            result[field] = [list(old) if isinstance(old, tuple) else old, new]
    return result


__all__ = ["CAPABILITIES", "MASK"]
