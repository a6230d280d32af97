"""Readable, path-named problem messages for documents validated with pydantic."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["format_loc", "format_pydantic_errors"]


def format_loc(loc: Sequence[str | int]) -> str:
    """('serious_rows', 2, 'threshold_min') -> 'serious_rows[2].threshold_min'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out or "(document)"


def _expected(ctx: dict[str, Any]) -> str:
    return str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")


_TYPE_WORDS = {
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "date_type": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_from_datetime_inexact": "must be a date (YYYY-MM-DD)",
    "missing": "required field is missing",
    "extra_forbidden": "unknown key",
    "none_required": "must be null",
}


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "literal_error":
        return f"{value!r} is not one of {_expected(ctx)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=",
              "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()), "?")
        return f"must be {op} {bound} (got {value!r})"
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match {ctx.get('pattern')}"
    if kind in _TYPE_WORDS:
        word = _TYPE_WORDS[kind]
        if kind in ("missing", "extra_forbidden"):
            return word
        return f"{word} (got {value!r})"
    msg = str(err.get("msg", "invalid"))
    return msg[:1].lower() + msg[1:]


def format_pydantic_errors(errors: Iterable[dict[str, Any]], prefix: Sequence[str | int] = ()) -> list[str]:
    """Turn pydantic's `ValidationError.errors()` into 'path: message' strings."""
    return [f"{format_loc([*prefix, *err.get('loc', ())])}: {_message(err)}" for err in errors]
