"""Plugin classes the loader must refuse, each for one reason (see tests/test_loading.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gateway.plugin import Plugin


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lenient(BaseModel):
    pass


class NotAPlugin:
    name = "not-a-plugin"
    Config = Strict


class NoName(Plugin[Strict]):
    Config = Strict


class BadName(Plugin[Strict]):
    name = "Bad Name!"
    Config = Strict


class NoConfig(Plugin[Strict]):
    name = "no-config"


class LenientConfig(Plugin[Lenient]):
    name = "lenient"
    Config = Lenient


class Good(Plugin[Strict]):
    name = "good"
    Config = Strict


class AlsoGood(Plugin[Strict]):
    name = "good"
    Config = Strict
