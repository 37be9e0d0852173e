"""Loading and validating gateway.yaml.

This package knows YAML, environment references and the gateway's top-level keys; it knows nothing
about the gateway's request path or any plugin (plugins hand in their own config models).
"""

from config.errors import ConfigError, Problem
from config.loader import PluginResolver, load_config, parse_config, read_yaml
from config.models import (
    AdminConfig,
    CloudConfig,
    GatewayConfig,
    LimitsConfig,
    Model,
    PluginEntry,
    ServerConfig,
    TelemetryConfig,
)

__all__ = [
    "AdminConfig",
    "CloudConfig",
    "ConfigError",
    "GatewayConfig",
    "LimitsConfig",
    "Model",
    "PluginEntry",
    "PluginResolver",
    "Problem",
    "ServerConfig",
    "TelemetryConfig",
    "load_config",
    "parse_config",
    "read_yaml",
]
