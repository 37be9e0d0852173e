"""The typed, frozen shape of gateway.yaml.

Plugin sections are validated by each plugin's own ``Config`` model (see ``config.loader``); this
module knows nothing about any plugin.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ByteSize, ConfigDict, Field, InstanceOf, SecretStr, field_validator

from config.values import Between, HttpBaseUrl, Int, NonEmptyStr, Number, Secret

KiB = 1024
MiB = 1024 * KiB


class Model(BaseModel):
    """Base of every config model: unknown keys are errors and values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Model):
    host: NonEmptyStr = "127.0.0.1"
    port: Annotated[Int, Between(1, 65535)] = 8080


class CloudConfig(Model):
    base_url: HttpBaseUrl
    """Origin of the cloud image API (``https://api.openai.com``); request paths are appended to it."""
    api_key: Secret | None = None
    """When set, replaces the client's ``Authorization`` on every request forwarded to the cloud."""
    timeout: Annotated[Number, Field(gt=0)] = 300.0
    """Seconds to wait for the cloud's response head, and between body reads after it."""
    connect_timeout: Annotated[Number, Field(gt=0)] = 10.0
    max_connections: Annotated[Int, Field(ge=1)] = 1024

    @field_validator("api_key")
    @classmethod
    def _empty_means_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # `api_key: ${OPENAI_API_KEY:-}` with the variable unset means "pass the client's key through".
        return value if value is not None and value.get_secret_value() else None


class AdminConfig(Model):
    token: Secret | None = None
    """Bearer token of the admin API; the admin API answers 403 while it is unset."""
    audit_log: str | None = "audit.log"
    """One JSON line per admin change; relative to the folder of gateway.yaml; null turns it off."""
    reload_interval: Annotated[Number, Field(gt=0, le=60)] = 1.0
    """Seconds between checks of gateway.yaml for hand edits."""

    @field_validator("token")
    @classmethod
    def _strong_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


class LimitsConfig(Model):
    max_body_bytes: Annotated[ByteSize, Field(ge=1)] = ByteSize(50 * MiB)
    max_url_bytes: Annotated[ByteSize, Field(ge=256)] = ByteSize(16 * KiB)
    """Longest request target (path and query); longer is 414 before the request reaches any code."""
    max_header_bytes: Annotated[ByteSize, Field(ge=1 * KiB)] = ByteSize(64 * KiB)
    """Largest header block (each header counted as ``name: value\\r\\n``); larger is 431."""


class TelemetryConfig(Model):
    exporter: Literal["none", "console", "otlp"] = "none"
    """Where traces go; ``otlp`` needs the opentelemetry-exporter-otlp package."""
    service_name: NonEmptyStr = "influgen-gateway"
    otlp_endpoint: str | None = None
    metrics_interval: Annotated[Number, Field(gt=0)] = 60.0
    """Seconds between metric exports (metrics go to the same exporter as traces)."""
    access_log: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class PluginEntry(Model):
    """One element of ``plugins``; ``config`` is an instance of the plugin's own ``Config`` model."""

    name: NonEmptyStr
    enabled: bool = True
    config: InstanceOf[BaseModel]


class GatewayConfig(Model):
    server: ServerConfig = ServerConfig()
    cloud: CloudConfig
    admin: AdminConfig = AdminConfig()
    limits: LimitsConfig = LimitsConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    plugins: tuple[PluginEntry, ...] = ()

    @property
    def enabled_plugins(self) -> tuple[PluginEntry, ...]:
        return tuple(entry for entry in self.plugins if entry.enabled)
