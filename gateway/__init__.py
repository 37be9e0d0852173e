"""An ASGI gateway between image generation clients, self-hosted GPUs and a cloud image API.

Plugin authors need only ``gateway.plugin`` (the Adapter Spec) and the request/reply types it names.
"""

__version__ = "0.1.0"
