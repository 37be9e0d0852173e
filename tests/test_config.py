"""config/: loading gateway.yaml, ${ENV} references, and errors that name the bad key."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from config import ConfigError, GatewayConfig, load_config, parse_config
from config.envsubst import has_reference, substitute
from config.values import Between


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    routing_percentage: Annotated[float, Between(0, 100)] = 25


class DemoPluginConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    routing: RoutingConfig = RoutingConfig()


def resolve(name: str) -> type[BaseModel]:
    if name == "demo":
        return DemoPluginConfig
    raise LookupError(f"no plugin named {name!r}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, resolve, environ or {})
    return [str(problem) for problem in caught.value.problems]


def test_minimal_file_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "cloud: {base_url: 'https://api.openai.com/'}\n"), resolve, {})
    assert config.cloud.base_url == "https://api.openai.com"
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.limits.max_body_bytes == 50 * 1024 * 1024
    assert config.telemetry.exporter == "none"
    assert config.admin.token is None
    assert config.cloud.api_key is None
    assert config.plugins == ()


def test_the_issue_example_error_is_reported_exactly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        cloud: {base_url: http://127.0.0.1:9100}
        plugins:
          - name: demo
            config:
              routing:
                routing_percentage: 140
        """,
    )
    assert problems(path) == [
        "plugins[0].config.routing.routing_percentage: must be between 0 and 100 (got 140)"
    ]


def test_every_bad_key_is_reported_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        server:
          port: true
          hots: 0.0.0.0
        cloud:
          base_url: ftp://example.com
          timeout: soon
        limits:
          max_body_bytes: lots
        telemetry:
          exporter: jaeger
        plugins:
          - name: demo
            config:
              routing: {enabeld: false}
          - name: missing-plugin
        colud: {}
        """,
    )
    assert problems(path) == [
        "server.port: must be an integer (got true)",
        "server.hots: is not a known key (did you mean 'host'?)",
        "cloud.base_url: must be an http:// or https:// URL (got 'ftp://example.com')",
        "cloud.timeout: must be a number (got 'soon')",
        "limits.max_body_bytes: must be a size in bytes, such as 52428800 or 50MiB (got 'lots')",
        "telemetry.exporter: must be one of 'none', 'console' or 'otlp' (got 'jaeger')",
        "plugins[0].config.routing.enabeld: is not a known key (did you mean 'enabled'?)",
        "plugins[1].name: no plugin named 'missing-plugin'",
        "colud: is not a known key (did you mean 'cloud'?)",
    ]


def test_missing_cloud_section_is_required(tmp_path: Path) -> None:
    assert problems(write(tmp_path, "server: {port: 8080}\n")) == ["cloud: is required"]


def test_environment_references_resolve_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        server: {port: "${PORT:-9000}"}
        cloud:
          base_url: ${CLOUD_URL}
          api_key: ${CLOUD_KEY:-}
        admin:
          token: prefix-${ADMIN_TOKEN}
        """,
    )
    config = load_config(
        path, resolve, {"CLOUD_URL": "https://cloud.test", "ADMIN_TOKEN": "0123456789abcdef"}
    )
    assert config.server.port == 9000
    assert config.cloud.base_url == "https://cloud.test"
    assert config.cloud.api_key is None, "an empty key means: pass the client's own key through"
    assert config.admin.token is not None
    assert config.admin.token.get_secret_value() == "prefix-0123456789abcdef"


def test_unset_variable_names_variable_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "cloud:\n  base_url: http://x.test\n  api_key: ${OPENAI_API_KEY}\n")
    assert problems(path) == [
        "cloud.api_key: environment variable OPENAI_API_KEY is not set "
        "(write ${OPENAI_API_KEY:-} to make it optional)"
    ]


def test_secrets_are_never_echoed_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "cloud: {base_url: 'http://x.test'}\nadmin:\n  token: ${TOKEN}\n")
    found = problems(path, {"TOKEN": "short-secret"})
    assert found == ["admin.token: must be at least 16 characters"]
    assert "short-secret" not in str(found)


def test_credentials_in_cloud_url_are_refused(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "cloud: {base_url: 'https://user:pw@api.test'}\n"))
    assert found == ["cloud.base_url: must not hold credentials; use api_key instead"]


def test_sizes_accept_units(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "cloud: {base_url: 'http://x.test'}\nlimits: {max_body_bytes: 2MiB}\n"), resolve, {}
    )
    assert config.limits.max_body_bytes == 2 * 1024 * 1024


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    found = problems(write(tmp_path, "cloud:\n  base_url: [unclosed\n"))
    assert len(found) == 1
    assert found[0].startswith("not valid YAML at line 3, column 1")


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    found = problems(
        write(tmp_path, "cloud: {base_url: 'http://a.test'}\ncloud: {base_url: 'http://b.test'}\n")
    )
    assert len(found) == 1
    assert "duplicate" in found[0]


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    assert problems(tmp_path / "absent.yaml")[0].startswith("cannot read the file")
    assert problems(write(tmp_path, "")) == [
        "the file must be a mapping of keys to values (cloud: is required)"
    ]


def test_duplicate_plugin_entries_are_an_error() -> None:
    tree = {"cloud": {"base_url": "http://x.test"}, "plugins": [{"name": "demo"}, {"name": "demo"}]}
    with pytest.raises(ConfigError) as caught:
        parse_config(tree, resolve, {})
    assert [str(p) for p in caught.value.problems] == [
        "plugins[1].name: 'demo' is already configured at plugins[0]"
    ]


def test_plugin_config_is_typed_and_the_whole_config_frozen() -> None:
    tree = {
        "cloud": {"base_url": "http://x.test"},
        "plugins": [{"name": "demo", "config": {"routing": {"routing_percentage": "40"}}}],
    }
    config = parse_config(tree, resolve, {})
    plugin_config = config.plugins[0].config
    assert isinstance(plugin_config, DemoPluginConfig)
    assert plugin_config.routing.routing_percentage == 40
    with pytest.raises(ValidationError):
        config.server.port = 1  # type: ignore[misc]
    assert isinstance(config, GatewayConfig)


def test_substitution_is_pure_and_supports_escapes() -> None:
    tree = {"a": "$${LITERAL}", "b": ["${X}", {"c": "${Y:-fallback}"}], "d": 5, "e": "${bad name}"}
    resolved, found = substitute(tree, {"X": "x"})
    assert resolved == {"a": "${LITERAL}", "b": ["x", {"c": "fallback"}], "d": 5, "e": "${bad name}"}
    assert [str(p) for p in found] == [
        "e: malformed environment reference '${bad name}': use ${NAME} or ${NAME:-default}"
    ]
    assert has_reference("key-${X}")
    assert not has_reference("$${X}")


def test_keys_must_be_header_safe_and_are_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "cloud:\n  base_url: http://x.test\n  api_key: ${KEY}\n")
    assert problems(path, {"KEY": "s\u00e9cret value"}) == [
        "cloud.api_key: must be at most 4096 visible ASCII characters (no spaces)"
    ]
