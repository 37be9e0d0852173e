"""Value types shared by the gateway's and the plugins' config models."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SecretStr,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema


def _no_bool(value: Any) -> Any:
    # YAML `true` is not a count of anything; pydantic would read it as 1.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "must be an integer")
    return value


def _number_no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "must be a number")
    return value


Int = Annotated[int, BeforeValidator(_no_bool)]
"""An integer; numeric strings (from ``${ENV}`` references) are accepted, booleans are not."""

Number = Annotated[float, BeforeValidator(_number_no_bool)]
"""A number; numeric strings are accepted, booleans are not."""

NonEmptyStr = Annotated[str, Field(min_length=1)]


def _one_line(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in {"Cc", "Zl", "Zp"}:
            raise PydanticCustomError(
                "one_line",
                "must not contain control characters or line breaks (found U+{code})",
                {"code": f"{ord(char):04X}"},
            )
    return value


Label = Annotated[
    str,
    Field(min_length=1, max_length=200, description="One line of text: no control characters or line breaks"),
    AfterValidator(_one_line),
]
"""A name people read on the admin page and in logs: one line of printable text, 1 to 200 characters."""


@dataclass(frozen=True, slots=True)
class Between:
    """``Annotated[float, Between(0, 100)]``: both bounds inclusive, named together in the error."""

    low: float
    high: float

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minimum=self.low, maximum=self.high)
        return json_schema

    def _check(self, value: float) -> float:
        if not self.low <= value <= self.high:
            raise PydanticCustomError(
                "between",
                "must be between {low} and {high}",
                {"low": _plain(self.low), "high": _plain(self.high)},
            )
        return value


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url_scheme", "must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise PydanticCustomError("url_credentials", "must not hold credentials; use api_key instead")
    if parts.query or parts.fragment:
        raise PydanticCustomError("url_query", "must not have a query string or fragment")
    return value.rstrip("/")


HttpBaseUrl = Annotated[str, AfterValidator(_http_url)]


def _visible_ascii(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if len(text) > 4096 or any(not 0x21 <= ord(char) <= 0x7E for char in text):
        # Never echo the value: it is a secret.
        raise PydanticCustomError("secret_chars", "must be at most 4096 visible ASCII characters (no spaces)")
    return value


Secret = Annotated[SecretStr, AfterValidator(_visible_ascii)]
"""A key or token sent in an HTTP header: visible ASCII only, never echoed in errors."""
"""An ``http(s)://host[:port][/prefix]`` URL with no trailing slash, credentials or query."""
