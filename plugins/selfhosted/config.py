"""The ``selfhosted`` plugin's section of gateway.yaml.

Every default is the product's documented default and applies when the key is absent: timeout 90 s,
2 retries, health TTL 30 s, 3 failures open a circuit for 5 minutes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from config.values import Between, HttpBaseUrl, Int, Label, Number, Secret
from plugins.selfhosted.urlpolicy import static_problem

TEXT_TO_IMAGE = "text-to-image"
IMAGE_TO_IMAGE = "image-to-image"
CAPABILITIES = (TEXT_TO_IMAGE, IMAGE_TO_IMAGE)
"""What the built-in adapter serves; anything else needs a custom adapter."""

EndpointStatus = Literal["active", "draining", "disabled"]
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def _supported(value: str) -> str:
    if value not in CAPABILITIES:
        raise PydanticCustomError(
            "capability",
            "'{value}' is not supported by the built-in self-hosted adapter (it serves {supported}); "
            "write a custom adapter for it: see docs/adapter-spec.md",
            {"value": value, "supported": ", ".join(CAPABILITIES)},
        )
    return value


Capability = Annotated[str, Field(json_schema_extra={"enum": list(CAPABILITIES)})]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoutingConfig(Model):
    enabled: bool = True
    routing_percentage: Annotated[Number, Between(0, 100)] = 25.0
    """Share of eligible requests sent to self-hosted endpoints, exact over any window."""


class RouteRule(Model):
    method: Annotated[str, Field(pattern=r"^[A-Za-z]+$")] = "POST"
    path: Annotated[str, Field(pattern=r"^/\S*$")]

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


def _default_routes() -> dict[str, tuple[RouteRule, ...]]:
    return {
        TEXT_TO_IMAGE: (RouteRule(method="POST", path="/v1/images/generations"),),
        IMAGE_TO_IMAGE: (RouteRule(method="POST", path="/v1/images/edits"),),
    }


class EndpointConfig(Model):
    id: Annotated[str, Field(pattern=_ID.pattern)] | None = None
    """Stable identifier (``X-Gateway-Route: selfhosted/<id>``); derived from the name when absent."""
    name: Label
    url: HttpBaseUrl
    api_key: Secret | None = None
    """Sent to this endpoint as ``Authorization: Bearer <key>``; never shown or logged."""
    status: EndpointStatus = "active"
    max_concurrency: Annotated[Int, Field(ge=1)] = 2
    capabilities: tuple[Capability, ...] = CAPABILITIES
    weight: Annotated[Number, Field(gt=0)] = 1.0

    @field_validator("capabilities")
    @classmethod
    def _only_supported(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _raise_all([(index, _check(_supported, item)) for index, item in enumerate(value)], value)
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a capability")
        return value

    @field_validator("api_key")
    @classmethod
    def _empty_means_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @property
    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None


class SelfHostedConfig(Model):
    routing: RoutingConfig = RoutingConfig()
    cloud_fallback: bool = True
    timeout: Annotated[Number, Field(gt=0)] = 90.0
    """Seconds per upstream attempt, for the response head and for each body read after it."""
    retries: Annotated[Int, Field(ge=0, le=10)] = 2
    response_buffer_bytes: Annotated[Int, Field(ge=0)] = 32 * 1024 * 1024
    """A successful answer up to this size is received whole and checked (complete, and valid JSON
    when it says JSON) before the client sees a byte, so an endpoint failing mid-answer is retried or
    falls back like any other failure. Larger answers and event streams are streamed as they arrive;
    0 streams every answer."""
    health_path: Annotated[str, Field(pattern=r"^/\S*$")] = "/health"
    health_ttl: Annotated[Number, Field(gt=0)] = 30.0
    failure_threshold: Annotated[Int, Field(ge=1)] = 3
    circuit_reset: Annotated[Number, Field(gt=0)] = 300.0
    queue_max_size: Annotated[Int, Field(ge=0)] = 1000
    queue_max_wait: Annotated[Number, Field(ge=0)] = 30.0
    routes: dict[str, tuple[RouteRule, ...]] = Field(default_factory=_default_routes)
    allowed_networks: tuple[IPvAnyNetwork, ...] | None = None
    """When set, every address an endpoint URL resolves to must lie in one of these CIDRs."""
    endpoints: tuple[EndpointConfig, ...] = ()

    @field_validator("routes")
    @classmethod
    def _routes_supported(cls, value: dict[str, tuple[RouteRule, ...]]) -> dict[str, tuple[RouteRule, ...]]:
        _raise_all([(name, _check(_supported, name)) for name in value], value)
        return value

    @field_validator("endpoints")
    @classmethod
    def _allowed(cls, value: tuple[EndpointConfig, ...], info: ValidationInfo) -> tuple[EndpointConfig, ...]:
        allowed = info.data.get("allowed_networks")
        problems = []
        for index, endpoint in enumerate(value):
            problem = static_problem(endpoint.url, allowed)
            if problem is not None:
                problems.append((f"{index}.url", PydanticCustomError("url_policy", problem)))
        _raise_all(problems, value)
        return value

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, value: tuple[EndpointConfig, ...]) -> tuple[EndpointConfig, ...]:
        endpoints = with_ids(value)
        problems: list[tuple[int | str, PydanticCustomError | None]] = []
        for field in ("name", "id"):
            first: dict[str, int] = {}
            for index, endpoint in enumerate(endpoints):
                key = str(getattr(endpoint, field))
                if key in first:
                    error = PydanticCustomError(
                        "duplicate",
                        "'{value}' is already used by endpoints[{first}]",
                        {"value": key, "first": first[key]},
                    )
                    problems.append((f"{index}.{field}", error))
                first.setdefault(key, index)
        _raise_all(problems, value)
        return endpoints


def with_ids(endpoints: Sequence[EndpointConfig]) -> tuple[EndpointConfig, ...]:
    """Give every endpoint without an ``id`` one derived from its name (stable across restarts)."""
    taken = {endpoint.id for endpoint in endpoints if endpoint.id is not None}
    result = []
    for endpoint in endpoints:
        if endpoint.id is None:
            endpoint_id = _free_id(slug(endpoint.name), taken)
            taken.add(endpoint_id)
            result.append(endpoint.model_copy(update={"id": endpoint_id}))
        else:
            result.append(endpoint)
    return tuple(result)


def slug(name: str) -> str:
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50]
    return text if text and text[0].isalnum() else f"endpoint-{text}".rstrip("-")


def _free_id(base: str, taken: set[str]) -> str:
    candidate, counter = base, 2
    while candidate in taken:
        candidate, counter = f"{base}-{counter}", counter + 1
    return candidate


def _check(validate: Any, value: Any) -> PydanticCustomError | None:
    try:
        validate(value)
    except PydanticCustomError as error:
        return error
    return None


def _raise_all(found: Sequence[tuple[int | str, PydanticCustomError | None]], value: Any) -> None:
    """Raise every problem at once, each at its own location under the validated field."""
    errors = [
        InitErrorDetails(
            type=error,
            loc=tuple(int(part) if part.isdigit() else part for part in str(where).split(".")),
            input=value,
        )
        for where, error in found
        if error is not None
    ]
    if errors:
        raise ValidationError.from_exception_data("selfhosted", errors)
