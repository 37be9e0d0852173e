"""The built-in ``selfhosted`` plugin: routes a share of image requests to self-hosted GPU endpoints."""

from plugins.selfhosted.plugin import SelfHostedPlugin

PLUGIN = SelfHostedPlugin

__all__ = ["PLUGIN", "SelfHostedPlugin"]
