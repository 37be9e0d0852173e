"""Pydantic validation errors, told as the rule each bad key broke.

Pydantic's own wording ("Input should be less than or equal to 100") is written for developers;
an operator reading ``gateway check`` wants ``must be at most 100 (got 140)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from config.errors import Problem, format_path

_SECRET_WORDS = ("key", "token", "secret", "password")
# Errors whose input is itself the secret (a URL with a password in it).
_NEVER_ECHO = frozenset({"url_credentials"})

_RULES: dict[str, str] = {
    "missing": "is required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "byte_size": "must be a size in bytes, such as 52428800 or 50MiB",
    "byte_size_unit": "must use a unit such as KiB, MiB or GiB",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "url_parsing": "must be a URL such as https://api.example.com",
    "url_scheme": "must be an http:// or https:// URL",
}


def problems_from(
    error: ValidationError, prefix: Sequence[str | int] = (), model: type[BaseModel] | None = None
) -> list[Problem]:
    """Translate every error of ``error``; ``prefix`` is where the validated value sits in the file."""
    return [_problem(detail, tuple(prefix), model) for detail in error.errors(include_url=False)]


def _problem(detail: ErrorDetails, prefix: tuple[str | int, ...], model: type[BaseModel] | None) -> Problem:
    loc = tuple(detail["loc"])
    path = format_path((*prefix, *loc))
    return Problem(path, _rule(detail, loc, model))


def _rule(detail: ErrorDetails, loc: tuple[str | int, ...], model: type[BaseModel] | None) -> str:
    kind, ctx = detail["type"], detail.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(loc, model)
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        rule = _bound(kind, ctx)
    elif kind == "literal_error":
        rule = f"must be one of {ctx.get('expected', '')}"
    elif kind in _RULES:
        rule = _RULES[kind]
    else:
        rule = detail["msg"].removeprefix("Value error, ")
    return rule + _got(detail, loc)


def _bound(kind: str, ctx: dict[str, Any]) -> str:
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx['ge'])}"
    if kind == "greater_than":
        return f"must be greater than {_number(ctx['gt'])}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx['le'])}"
    return f"must be less than {_number(ctx['lt'])}"


def _unknown_key(loc: tuple[str | int, ...], model: type[BaseModel] | None) -> str:
    known = _known_keys(model, loc[:-1]) if model is not None else []
    rule = "is not a known key"
    close = difflib.get_close_matches(str(loc[-1]), known, n=1) if loc else []
    if close:
        return f"{rule} (did you mean {close[0]!r}?)"
    if known:
        return f"{rule} (known keys: {', '.join(known)})"
    return rule


def _known_keys(model: type[BaseModel], loc: Iterable[str | int]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model``, if the path leads to one."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            current = _item_type(current)
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = _model_in(current.model_fields[part].annotation)
        else:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _item_type(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", ())
    return _model_in(args[0]) if args else None


def _model_in(annotation: Any) -> Any:
    """The model class inside ``Model``, ``Model | None`` or ``tuple[Model, ...]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def _got(detail: ErrorDetails, loc: tuple[str | int, ...]) -> str:
    """`` (got 140)`` for a short scalar input that is not a secret."""
    value = detail.get("input")
    if detail["type"] in _NEVER_ECHO or detail["type"] == "missing":
        return ""
    if not isinstance(value, str | int | float | bool):
        return ""
    if any(word in str(part).lower() for part in loc for word in _SECRET_WORDS):
        return ""
    text = (
        repr(value)
        if isinstance(value, str)
        else str(value).lower()
        if isinstance(value, bool)
        else str(value)
    )
    return f" (got {text})" if len(text) <= 80 else ""


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
