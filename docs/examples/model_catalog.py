"""An example adapter: the gateway answers ``GET /v1/models`` itself, from a list in gateway.yaml.

Clients that list models before they generate (many SDK-based tools do) then see exactly the models
this gateway serves, whichever upstream ends up answering. Everything else passes on untouched.

Load it from gateway.yaml by import path::

    plugins:
      - name: docs.examples.model_catalog:ModelCatalog
        config:
          models: [gpt-image-1, dall-e-3]

It shows every hook of the Adapter Spec (docs/adapter-spec.md): a typed ``Config``, ``startup``
and ``shutdown``, ``handle`` claiming some requests and passing on the rest, and an admin route.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.errors import NotFound
from gateway.plugin import Plugin, PluginContext, Reply
from gateway.request import ProxyRequest

logger = logging.getLogger("plugins.model_catalog")

ModelId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")]


class CatalogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: Annotated[tuple[ModelId, ...], Field(min_length=1)]
    owned_by: str = "influgen-gateway"


class ModelCatalog(Plugin[CatalogConfig]):
    name = "model-catalog"
    Config = CatalogConfig

    def __init__(self, config: CatalogConfig) -> None:
        super().__init__(config)
        self.served = 0
        self.created = 0

    async def startup(self, context: PluginContext) -> None:
        self.created = int(context.clock.wall())
        logger.info("model catalog serving %d models", len(self.config.models))

    async def shutdown(self) -> None:
        logger.info("model catalog answered %d requests", self.served)

    async def handle(self, request: ProxyRequest) -> Reply | None:
        if request.method != "GET" or not request.path.startswith("/v1/models"):
            return None
        self.served += 1
        if request.path in ("/v1/models", "/v1/models/"):
            return JSONResponse(
                {"object": "list", "data": [self._model(model) for model in self.config.models]}
            )
        model_id = request.path.removeprefix("/v1/models/")
        if model_id in self.config.models:
            return JSONResponse(self._model(model_id))
        return NotFound(
            f"the model {model_id!r} does not exist", param="model", code="model_not_found"
        ).response()

    def admin_routes(self) -> Sequence[BaseRoute]:
        return [Route("/", self._overview, methods=["GET"])]

    async def _overview(self, request: Request) -> Response:
        return JSONResponse({"models": list(self.config.models), "served": self.served})

    def _model(self, model_id: str) -> dict[str, object]:
        return {"id": model_id, "object": "model", "created": self.created, "owned_by": self.config.owned_by}
