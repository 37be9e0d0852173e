"""gateway/loading.py: finding plugins by name or import path, and refusing malformed ones."""

from __future__ import annotations

import pytest

from config import ConfigError, parse_config
from gateway.loading import build_plugins, config_model, plugin_class
from tests.support import bad_plugins


def test_import_path_loads_the_example_adapter() -> None:
    cls = plugin_class("docs.examples.model_catalog:ModelCatalog")
    assert cls.name == "model-catalog"
    assert config_model("docs.examples.model_catalog:ModelCatalog") is cls.Config


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("tests.support.bad_plugins:NotAPlugin", "is not a Plugin subclass"),
        ("tests.support.bad_plugins:NoName", "must declare name"),
        ("tests.support.bad_plugins:BadName", "must declare name"),
        ("tests.support.bad_plugins:NoConfig", "must declare Config"),
        ("tests.support.bad_plugins:LenientConfig", "extra='forbid'"),
        ("tests.support.bad_plugins:Missing", "has no attribute 'Missing'"),
        ("tests.support.nowhere:Thing", "cannot import 'tests.support.nowhere'"),
        ("no-such-plugin", "no plugin named 'no-such-plugin'"),
    ],
)
def test_malformed_plugins_are_refused_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(LookupError, match=reason.replace("(", r"\(").replace(")", r"\)")) as caught:
        plugin_class(name)
    assert "docs/adapter-spec.md" in str(caught.value)


def test_loader_errors_surface_at_the_entry_path() -> None:
    tree = {
        "cloud": {"base_url": "http://x.test"},
        "plugins": [{"name": "tests.support.bad_plugins:NoConfig"}],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(tree, config_model, {})
    assert str(caught.value.problems[0]).startswith(
        "plugins[0].name: 'tests.support.bad_plugins:NoConfig' must declare Config"
    )


def test_two_plugins_declaring_one_name_are_refused() -> None:
    tree = {
        "cloud": {"base_url": "http://x.test"},
        "plugins": [
            {"name": "tests.support.bad_plugins:Good"},
            {"name": "tests.support.bad_plugins:AlsoGood"},
        ],
    }
    config = parse_config(tree, config_model, {})
    with pytest.raises(ConfigError) as caught:
        build_plugins(config)
    assert [str(p) for p in caught.value.problems] == [
        "plugins[1].name: a plugin named 'good' is already loaded"
    ]


def test_disabled_plugins_are_validated_but_not_built() -> None:
    tree = {
        "cloud": {"base_url": "http://x.test"},
        "plugins": [
            {"name": "tests.support.bad_plugins:Good", "enabled": False},
            {"name": "docs.examples.model_catalog:ModelCatalog", "config": {"models": ["m"]}},
        ],
    }
    plugins = build_plugins(parse_config(tree, config_model, {}))
    assert [plugin.name for plugin in plugins] == ["model-catalog"]
    assert repr(plugins[0]) == "<ModelCatalog name='model-catalog'>"
    assert bad_plugins.Good.name == "good"
