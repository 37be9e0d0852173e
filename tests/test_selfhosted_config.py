"""plugins/selfhosted/config.py: the documented defaults, and errors at the path of the bad key."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, parse_config
from gateway.loading import config_model
from plugins.selfhosted.config import SelfHostedConfig, slug, with_ids


def problems(plugin_config: dict[str, Any]) -> list[str]:
    tree = {
        "cloud": {"base_url": "http://cloud.test"},
        "plugins": [{"name": "selfhosted", "config": plugin_config}],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(tree, config_model, {})
    return [str(problem) for problem in caught.value.problems]


def test_documented_defaults_apply_when_keys_are_absent() -> None:
    config = SelfHostedConfig()
    assert (config.routing.enabled, config.routing.routing_percentage) == (True, 25)
    assert config.cloud_fallback is True
    assert (config.timeout, config.retries, config.health_path, config.health_ttl) == (90, 2, "/health", 30)
    assert (config.failure_threshold, config.circuit_reset) == (3, 300)
    assert (config.queue_max_size, config.queue_max_wait) == (1000, 30)
    assert {
        capability: [(rule.method, rule.path) for rule in rules]
        for capability, rules in config.routes.items()
    } == {
        "text-to-image": [("POST", "/v1/images/generations")],
        "image-to-image": [("POST", "/v1/images/edits")],
    }
    endpoint = SelfHostedConfig.model_validate(
        {"endpoints": [{"name": "GPU A", "url": "http://10.0.0.5:7860"}]}
    ).endpoints[0]
    assert (endpoint.id, endpoint.status, endpoint.max_concurrency, endpoint.weight) == (
        "gpu-a",
        "active",
        2,
        1,
    )
    assert endpoint.capabilities == ("text-to-image", "image-to-image")


def test_other_capabilities_point_to_the_adapter_spec() -> None:
    found = problems(
        {
            "routes": {"motion-transfer": [{"method": "POST", "path": "/v1/videos/motion-transfer"}]},
            "endpoints": [{"name": "a", "url": "http://a.test", "capabilities": ["text-to-image", "video"]}],
        }
    )
    unsupported = (
        "is not supported by the built-in self-hosted adapter (it serves text-to-image, image-to-image); "
        "write a custom adapter for it: see docs/adapter-spec.md"
    )
    assert found == [
        f"plugins[0].config.routes.motion-transfer: 'motion-transfer' {unsupported}",
        f"plugins[0].config.endpoints[0].capabilities[1]: 'video' {unsupported}",
    ]


def test_bad_values_are_named_by_path() -> None:
    found = problems(
        {
            "routing": {"routing_percentage": 140},
            "retries": -1,
            "timeout": 0,
            "endpoints": [
                {"name": "", "url": "ftp://a", "status": "paused", "max_concurrency": 0, "weight": 0}
            ],
        }
    )
    assert found == [
        "plugins[0].config.routing.routing_percentage: must be between 0 and 100 (got 140)",
        "plugins[0].config.timeout: must be greater than 0 (got 0)",
        "plugins[0].config.retries: must be at least 0 (got -1)",
        "plugins[0].config.endpoints[0].name: must not be empty (got '')",
        "plugins[0].config.endpoints[0].url: must be an http:// or https:// URL (got 'ftp://a')",
        "plugins[0].config.endpoints[0].status: must be one of 'active', 'draining' or 'disabled' "
        "(got 'paused')",
        "plugins[0].config.endpoints[0].max_concurrency: must be at least 1 (got 0)",
        "plugins[0].config.endpoints[0].weight: must be greater than 0 (got 0)",
    ]


def test_names_and_ids_are_unique() -> None:
    found = problems(
        {
            "endpoints": [
                {"name": "A", "url": "http://a.test"},
                {"name": "A", "url": "http://b.test"},
                {"id": "x", "name": "C", "url": "http://c.test"},
                {"id": "x", "name": "D", "url": "http://d.test"},
            ]
        }
    )
    assert found == [
        "plugins[0].config.endpoints[1].name: 'A' is already used by endpoints[0]",
        "plugins[0].config.endpoints[3].id: 'x' is already used by endpoints[2]",
    ]


def test_generated_ids_are_stable_slugs_that_avoid_given_ones() -> None:
    config = SelfHostedConfig.model_validate(
        {
            "endpoints": [
                {"name": "GPU A", "url": "http://a.test"},
                {"id": "gpu-a", "name": "Other", "url": "http://b.test"},
                {"name": "gpu a!", "url": "http://c.test"},
            ]
        }
    )
    assert [endpoint.id for endpoint in config.endpoints] == ["gpu-a-2", "gpu-a", "gpu-a-3"]
    assert with_ids(config.endpoints) == config.endpoints
    assert slug("  Ümlaut GPU #1 ") == "mlaut-gpu-1"
    assert slug("!!!") == "endpoint"


def test_an_empty_key_means_no_key_and_a_key_is_never_echoed() -> None:
    endpoint = SelfHostedConfig.model_validate(
        {"endpoints": [{"name": "a", "url": "http://a.test", "api_key": ""}]}
    ).endpoints[0]
    assert endpoint.key is None
    keyed = SelfHostedConfig.model_validate(
        {"endpoints": [{"name": "a", "url": "http://a.test", "api_key": "s3cret"}]}
    )
    assert "s3cret" not in repr(keyed)


def test_gateway_yaml_may_not_aim_an_endpoint_at_metadata_addresses() -> None:
    found = problems(
        {
            "endpoints": [
                {"name": "a", "url": "http://169.254.169.254/latest"},
                {"name": "b", "url": "http://2852039166:7860"},
                {"name": "c", "url": "http://[fe80::1%25eth0]:7860"},
            ]
        }
    )
    assert [problem.split(":", 1)[0] for problem in found] == [
        f"plugins[0].config.endpoints[{index}].url" for index in range(3)
    ]
    assert all("link-local or cloud-metadata" in problem for problem in found), found
