"""The command line: ``check`` reports every bad key; ``serve`` refuses a bad config before binding."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loadtests.processes import free_port

ROOT = Path(__file__).resolve().parents[1]


def gateway_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


BROKEN = """\
server:
  port: 70000
cloud:
  base_url: http://127.0.0.1:9100
  api_key: ${UNSET_CLOUD_KEY_FOR_TEST}
limits:
  max_body_bytes: -5
plugins:
  - name: docs.examples.model_catalog:ModelCatalog
    config:
      models: []
      owner: me
  - name: not-installed-anywhere
"""


def test_check_accepts_the_repository_gateway_yaml() -> None:
    result = gateway_cli("check", "--config", str(ROOT / "gateway.yaml"))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_reports_every_bad_key_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    result = gateway_cli("check", "--config", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        "  server.port: must be between 1 and 65535 (got 70000)",
        "  cloud.api_key: environment variable UNSET_CLOUD_KEY_FOR_TEST is not set "
        "(write ${UNSET_CLOUD_KEY_FOR_TEST:-} to make it optional)",
        "  limits.max_body_bytes: must be a size in bytes, such as 52428800 or 50MiB (got -5)",
        "  plugins[0].config.models: must not be empty",
        "  plugins[0].config.owner: is not a known key (did you mean 'owned_by'?)",
        "  plugins[1].name: no plugin named 'not-installed-anywhere': not a built-in (plugins/), "
        "not an installed entry point, and not an import path like package.module:Class "
        "(see docs/adapter-spec.md)",
    ]
    assert result.stderr.splitlines()[0] == f"{path}: 6 problems in the configuration:"


def test_serve_refuses_a_bad_config_before_binding(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "bad.yaml"
    path.write_text(
        json.dumps(
            {
                "server": {"port": port},
                "cloud": {"base_url": "http://x.test"},
                "limits": {"max_body_bytes": 0},
            }
        )
    )
    result = gateway_cli("serve", "--config", str(path))
    assert result.returncode == 1
    assert "limits.max_body_bytes: must be at least 1 (got 0)" in result.stderr
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_otlp_exporter_needs_its_package(tmp_path: Path) -> None:
    path = tmp_path / "otlp.yaml"
    path.write_text("cloud: {base_url: 'http://x.test'}\ntelemetry: {exporter: otlp}\n")
    result = gateway_cli("check", "--config", str(path))
    assert result.returncode == 1
    assert (
        "telemetry.exporter: 'otlp' needs the opentelemetry-exporter-otlp package installed" in result.stderr
    )


def test_console_script_has_the_same_verbs(tmp_path: Path) -> None:
    script = shutil.which("influgen-gateway", path=str(Path(sys.executable).parent))
    assert script is not None, "the console script is installed with the package"
    path = tmp_path / "ok.yaml"
    path.write_text(
        textwrap.dedent("""\
        cloud:
          base_url: http://127.0.0.1:9100
        plugins:
          - name: docs.examples.model_catalog:ModelCatalog
            config: {models: [gpt-image-1]}
        """)
    )
    # An adapter next to the config file is importable, whatever the working directory.
    (tmp_path / "docs" / "examples").mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "examples" / "model_catalog.py", tmp_path / "docs" / "examples")
    result = subprocess.run(
        [script, "check", "-c", str(path)], capture_output=True, text=True, cwd="/", timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "plugins: model-catalog" in result.stdout
    bad = subprocess.run(
        [script, "serve", "--config", str(tmp_path / "absent.yaml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bad.returncode == 1
    assert "cannot read the file" in bad.stderr
