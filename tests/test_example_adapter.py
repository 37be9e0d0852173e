"""The example adapter from docs/adapter-spec.md, loaded from gateway.yaml, answers its own route."""

from __future__ import annotations

from tests.conftest import StartGateway
from tests.support.stack import ADMIN_TOKEN, Fake, GatewayProcess

CATALOG = {
    "name": "docs.examples.model_catalog:ModelCatalog",
    "config": {"models": ["gpt-image-1", "sdxl-turbo"]},
}


def catalog_gateway(gateway_factory: StartGateway, cloud: Fake, **admin: str) -> GatewayProcess:
    return gateway_factory({"cloud": {"base_url": cloud.url}, "admin": admin, "plugins": [CATALOG]})


def test_the_adapter_answers_its_route_and_passes_the_rest_on(
    gateway_factory: StartGateway, cloud: Fake
) -> None:
    client = catalog_gateway(gateway_factory, cloud, token=ADMIN_TOKEN).client()
    models = client.get("/v1/models")
    assert models.status_code == 200
    assert [model["id"] for model in models.json()["data"]] == ["gpt-image-1", "sdxl-turbo"]
    assert models.headers["x-gateway-route"] == "model-catalog"
    one = client.get("/v1/models/sdxl-turbo")
    assert one.json()["id"] == "sdxl-turbo"
    unknown = client.get("/v1/models/dall-e-2")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    passed_on = client.post("/v1/images/generations", json={"prompt": "x"})
    assert passed_on.status_code == 200
    assert passed_on.headers["x-gateway-route"] == "cloud"
    assert cloud.stats()["by_route"] == {"POST /v1/images/generations": 1}


def test_the_adapters_admin_route_sits_behind_the_admin_token(
    gateway_factory: StartGateway, cloud: Fake
) -> None:
    gateway = catalog_gateway(gateway_factory, cloud, token=ADMIN_TOKEN)
    gateway.client().get("/v1/models")
    overview = gateway.admin().get("/api/v1/admin/model-catalog/")
    assert overview.json() == {"models": ["gpt-image-1", "sdxl-turbo"], "served": 1}
    anonymous = gateway.client().get("/api/v1/admin/model-catalog/")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


def test_admin_token_edge_cases_are_401_never_500(gateway_factory: StartGateway, cloud: Fake) -> None:
    gateway = catalog_gateway(gateway_factory, cloud, token=ADMIN_TOKEN)
    client = gateway.client()
    attempts = [
        b"Bearer wrong-token-0123456789",
        f"Basic {ADMIN_TOKEN}".encode(),
        ADMIN_TOKEN.encode(),
        b"Bearer " + b"x" * 10_000,
        "Bearer t\u00f6ken-with-latin1".encode("latin-1"),
        "Bearer \u20ac-non-latin".encode(),
    ]
    for value in attempts:
        response = client.get("/api/v1/admin/model-catalog/", headers=[(b"authorization", value)])
        assert response.status_code == 401, value[:40]
    lower_scheme = client.get(
        "/api/v1/admin/model-catalog/", headers={"Authorization": f"bearer {ADMIN_TOKEN}"}
    )
    assert lower_scheme.status_code == 200


def test_without_an_admin_token_the_admin_api_is_closed(gateway_factory: StartGateway, cloud: Fake) -> None:
    gateway = catalog_gateway(gateway_factory, cloud)
    response = gateway.client().get(
        "/api/v1/admin/model-catalog/", headers={"Authorization": "Bearer anything"}
    )
    assert response.status_code == 403
    assert "set admin.token in gateway.yaml" in response.json()["error"]["message"]
