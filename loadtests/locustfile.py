"""Locust load test for the gateway: a realistic mix of image traffic, every answer checked.

    text-to-image   POST /v1/images/generations (JSON)                           weight 6
    image-to-image  POST /v1/images/edits (multipart, a real PNG and a mask)       weight 3
    not eligible    POST /v1/videos/motion-transfer (always the cloud's)          weight 1

An image answer passes only if it is a 200 whose ``data[0].b64_json`` decodes to a PNG; the motion
transfer answer only if it is a 200 with a job id. Against ``make demo``::

    .venv/bin/locust -f loadtests/locustfile.py --headless -u 20 -r 5 -t 1m \\
        --host http://127.0.0.1:8080 --csv results/demo
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any, ClassVar

from locust import between, task
from locust.contrib.fasthttp import FastHttpUser, ResponseContextManager

from loadtests.fakes.png import IEND, SIGNATURE, colour_for, solid_png_head

SOURCE_PNG = solid_png_head(colour_for(b"locust source")) + IEND
MASK_PNG = solid_png_head((0, 0, 0)) + IEND
PROMPTS = (
    "a lighthouse at dawn",
    "a red fox in fresh snow",
    "a bowl of ramen, studio light",
    "a paper boat on a lake",
)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (FastHttpUser has no ``files=``) and its content type."""
    boundary = "----locust" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, content) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def check_image(response: ResponseContextManager) -> None:
    if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
        return
    try:
        image = base64.b64decode(response.json()["data"][0]["b64_json"], validate=True)
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as error:
        response.failure(f"not an image answer: {type(error).__name__}")
        return
    if not image.startswith(SIGNATURE):
        response.failure("data[0].b64_json is not a PNG")
        return
    response.success()


class ImageClient(FastHttpUser):
    """An application generating and editing images through the gateway with the OpenAI API."""

    wait_time = between(0.2, 1.0)
    headers: ClassVar[dict[str, str]] = {"Authorization": "Bearer sk-locust"}

    def _prompt(self) -> str:
        return PROMPTS[secrets.randbelow(len(PROMPTS))]

    @task(6)
    def text_to_image(self) -> None:
        body = {"model": "gpt-image-1", "prompt": self._prompt(), "n": 1, "size": "1024x1024"}
        with self.client.post(
            "/v1/images/generations",
            json=body,
            headers=self.headers,
            catch_response=True,
            name="text-to-image",
        ) as response:
            check_image(response)

    @task(3)
    def image_to_image(self) -> None:
        body, content_type = multipart(
            {"model": "gpt-image-1", "prompt": self._prompt()},
            {"image": ("source.png", SOURCE_PNG), "mask": ("mask.png", MASK_PNG)},
        )
        headers = {**self.headers, "Content-Type": content_type}
        # locust annotates data as str or dict; geventhttpclient sends bytes as they are.
        payload: Any = body
        with self.client.post(
            "/v1/images/edits", data=payload, headers=headers, catch_response=True, name="image-to-image"
        ) as response:
            check_image(response)

    @task(1)
    def motion_transfer(self) -> None:
        job: dict[str, Any] = {"video": "dance.mp4", "image": "person.png"}
        with self.client.post(
            "/v1/videos/motion-transfer",
            data=json.dumps(job),
            headers={**self.headers, "Content-Type": "application/json"},
            catch_response=True,
            name="motion-transfer (cloud only)",
        ) as response:
            if response.status_code == 200 and "id" in (response.json() or {}):
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")
