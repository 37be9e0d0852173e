"""End to end: the official openai SDK, pointed at the gateway, works unchanged."""

from __future__ import annotations

import base64
import io

import openai
import pytest

from loadtests.processes import free_port
from tests.conftest import StartGateway
from tests.support.png import b64_png_size
from tests.support.stack import Fake, GatewayProcess


def sdk(gateway: GatewayProcess, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-client", **kwargs)  # type: ignore[arg-type]


def test_images_generate(gateway: GatewayProcess, cloud: Fake) -> None:
    raw = sdk(gateway).images.with_raw_response.generate(model="gpt-image-1", prompt="a red fox in snow", n=2)
    result = raw.parse()
    assert raw.headers["x-gateway-route"] == "cloud"
    assert raw.headers["x-request-id"]
    assert result.data is not None
    assert len(result.data) == 2
    for image in result.data:
        assert image.b64_json is not None
        assert b64_png_size(image.b64_json) == (64, 64)
    assert cloud.stats()["by_route"] == {"POST /v1/images/generations": 1}


def test_images_edit_with_multipart_upload(gateway: GatewayProcess, cloud: Fake) -> None:
    client = sdk(gateway)
    source = client.images.generate(model="gpt-image-1", prompt="a plain square")
    assert source.data is not None
    assert source.data[0].b64_json is not None
    png = base64.b64decode(source.data[0].b64_json)
    image = ("square.png", io.BytesIO(png), "image/png")
    mask = ("mask.png", io.BytesIO(png), "image/png")
    edited = client.images.edit(model="gpt-image-1", image=image, mask=mask, prompt="add a hat")
    assert edited.data is not None
    assert edited.data[0].b64_json is not None
    assert b64_png_size(edited.data[0].b64_json) == (64, 64)
    edit_request = cloud.stats()["recent"][-1]
    assert edit_request["path"] == "/v1/images/edits"
    content_type = dict(edit_request["headers"])["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")


def test_gateway_errors_reach_the_sdk_as_api_errors(gateway: GatewayProcess, cloud: Fake) -> None:
    client = sdk(gateway, max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        client.images.generate(model="gpt-image-1", prompt="x", extra_headers={"x-fake-fail": "400"})
    assert bad.value.status_code == 400
    with pytest.raises(openai.RateLimitError) as limited:
        client.images.generate(model="gpt-image-1", prompt="x", extra_headers={"x-fake-fail": "429"})
    assert limited.value.response.headers["x-gateway-route"] == "cloud"


def test_the_gateways_own_errors_parse_as_sdk_errors(gateway_factory: StartGateway) -> None:
    gateway = gateway_factory({"cloud": {"base_url": f"http://127.0.0.1:{free_port()}"}})
    with pytest.raises(openai.InternalServerError) as unreachable:
        sdk(gateway, max_retries=0).images.generate(model="gpt-image-1", prompt="x")
    assert unreachable.value.status_code == 502
    assert unreachable.value.type == "upstream_error"
    assert "could not be reached" in unreachable.value.message
