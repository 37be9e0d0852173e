"""The HTTP/1.1 protocol the gateway serves: uvicorn's httptools protocol with a bounded request head.

llhttp, the parser under uvicorn, puts no limit on the request target or the header block, so
without one a 1 MB header would be forwarded to the upstream; and uvicorn answers a request it
cannot parse with a plain-text 400 that no SDK can read. This protocol

- refuses a request target over ``limits.max_url_bytes`` with 414 and a header block over
  ``limits.max_header_bytes`` with 431, while the head is still being parsed (Envoy answers 431
  the same way, at 60 KiB by default);
- answers every request that never reaches the application (malformed framing, bare CR or LF in a
  header, NUL bytes, a bad method token, both Content-Length and Transfer-Encoding, ...) with the
  JSON error body the rest of the gateway uses, and closes the connection.

Only the callbacks and the error answer are replaced; uvicorn's parsing, flow control and
keep-alive handling are used as they are.
"""

from __future__ import annotations

import http
import json
import logging
import sys
from typing import ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from config import LimitsConfig
from gateway.errors import BadRequest, GatewayError, HeadersTooLarge, UrlTooLong

logger = logging.getLogger("gateway")

HEADER_OVERHEAD = len(b": \r\n")


class RequestHeadRefused(Exception):
    """Raised from a parser callback to stop parsing; llhttp wraps it in ``HttpParserCallbackError``."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class GatewayHttpProtocol(HttpToolsProtocol):
    max_url_bytes: ClassVar[int] = 16 * 1024
    max_header_bytes: ClassVar[int] = 64 * 1024

    _header_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        # llhttp may deliver the target in pieces: the limit applies to the whole of it.
        if len(self.url) + len(url) > self.max_url_bytes:
            raise RequestHeadRefused(
                UrlTooLong(
                    f"the request target is longer than {self.max_url_bytes} bytes",
                    code="url_too_long",
                )
            )
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + HEADER_OVERHEAD
        if self._header_bytes > self.max_header_bytes:
            raise RequestHeadRefused(
                HeadersTooLarge(
                    f"the request headers are larger than {self.max_header_bytes} bytes",
                    code="headers_too_large",
                )
            )
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it could not parse, called from inside its ``except``
        clause: the exception being handled says what was wrong."""
        error = _refusal(sys.exc_info()[1])
        logger.info("request refused before the application: %d %s", error.status, error.message)
        body = json.dumps(error.body(), separators=(",", ":")).encode()
        head = [f"HTTP/1.1 {error.status} {http.HTTPStatus(error.status).phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _refusal(raised: BaseException | None) -> GatewayError:
    cause = None
    if isinstance(raised, httptools.HttpParserCallbackError):
        cause = raised.__cause__ or raised.__context__
    if isinstance(cause, RequestHeadRefused):
        return cause.error
    reason = str(raised).rstrip(".") if isinstance(raised, httptools.HttpParserError) else ""
    message = f"malformed HTTP request: {reason}" if reason else "malformed HTTP request"
    return BadRequest(message, code="malformed_request")


def http_protocol(limits: LimitsConfig) -> type[GatewayHttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with this config's limits."""
    return type(
        "GatewayHttpProtocol",
        (GatewayHttpProtocol,),
        {"max_url_bytes": int(limits.max_url_bytes), "max_header_bytes": int(limits.max_header_bytes)},
    )
