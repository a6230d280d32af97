"""What the TM Forum APIs of the app (TMF621 trouble tickets, TMF642 alarms) share: the
`Error` answer, `fields=` selection, the filters of TMF630 (equality with OR by `,` or `;`
or repetition; `.gt/.gte/.lt/.lte` on date-times), and the paging headers.

Deviations, said once here and in the OpenAPI text: an unknown filter attribute is answered
400 naming it (TMF630 allows 400 or ignoring it; a silently ignored typo would list every
ticket); ids are strings (TMF642 v4 types Alarm.id as an integer, its paths as strings).

Errors under /tmf-api/ are TMF630 `Error {code, reason, message, status}` with `@type` and
`detail` (= message, so a client of the rest of the API reads them the same way); a request
FastAPI cannot validate is 400 there, not 422 (`install_tmf_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.clock import fmt_time, in_window

TMF_ROOT = "/tmf-api/"
TIME_OPS = ("gt", "gte", "lt", "lte")
MAX_FILTER_VALUES = 50
PAGING = ("offset", "limit", "fields", "wait_s")


class TmfError(BaseModel):
    """TMF630 Error (also `detail`, as every other answer of this API that refuses)."""

    code: str
    reason: str
    message: str
    status: str
    detail: str = Field(description="= message")
    type_: str = Field(alias="@type", default="Error")


def error_body(status: int, message: str) -> dict:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return {"@type": "Error", "code": str(status), "reason": reason, "message": message,
            "status": str(status), "detail": message}


def tmf_answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI answers of a TMF operation: each code with the Error shape."""
    text = {400: "a bad request: a body or parameter that cannot be used (the message names it)",
            404: "no such resource", 405: "not offered (see the operation's text)",
            409: "the change is not allowed now (the message names the allowed ones)"}
    said = {c: text.get(c, HTTPStatus(c).phrase) for c in codes}
    return {c: {"model": TmfError, "description": said[c],
                "content": {"application/json": {"example": error_body(c, said[c])}}} for c in codes}


def install_tmf_errors(app: FastAPI) -> None:
    """Answers under /tmf-api/ in the Error shape; a request that does not validate is 400."""
    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not request.url.path.startswith(TMF_ROOT) or not isinstance(exc.detail, str):
            return await http_exception_handler(request, exc)
        return Response(orjson.dumps(error_body(exc.status_code, exc.detail)), status_code=exc.status_code,
                        media_type="application/json", headers=getattr(exc, "headers", None))

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not request.url.path.startswith(TMF_ROOT):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors()[:10])
        return Response(orjson.dumps(error_body(400, problems or "bad request")), status_code=400,
                        media_type="application/json")

    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)


def bad(message: str) -> HTTPException:
    return HTTPException(400, message)


# ---------------------------------------------------------------------- fields=

Fields = Annotated[str | None, Query(description="only these first-level attributes (comma-separated), "
                                                "with id, href and @type; unknown names are ignored")]


def select_fields(body: dict, fields: str | None) -> dict:
    """Only the named first-level attributes (and id, href, @type); unknown names are ignored."""
    if not fields:
        return body
    wanted = {f.strip() for f in fields.split(",")} | {"id", "href", "@type"}
    return {k: v for k, v in body.items() if k in wanted}


# ---------------------------------------------------------------------- filters

def query_filters(request: Request, known: Iterable[str]) -> dict[str, list[str]]:
    """The filter attributes of a list request: name (with its `.op` when it has one) → the
    values (repetition, `,` and `;` give several, OR); 400 naming an unknown attribute."""
    allowed = set(known)
    out: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name in PAGING:
            continue
        if name not in allowed:
            raise bad(f"unknown filter attribute {name[:80]!r}: filter on "
                      f"{', '.join(sorted(allowed))}")
        values = out.setdefault(name, [])
        values.extend(v for v in value.replace(";", ",").split(",") if v != "")
        if len(values) > MAX_FILTER_VALUES:
            raise bad(f"filter {name}: at most {MAX_FILTER_VALUES} values")
    return out


def time_filters(names: Sequence[str]) -> list[str]:
    """The filter names a date-time attribute accepts: itself (equality) and its .gt/.gte/.lt/.lte."""
    return [f"{n}.{op}" for n in names for op in TIME_OPS] + list(names)


def instant(name: str, text: str) -> str:
    """A date-time filter value as the read model's +08:00 text (text order is time order);
    400 naming the filter when it is not an ISO-8601 time with an offset."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise bad(f"filter {name}: {text[:60]!r} is not an ISO-8601 date-time") from None
    if dt.tzinfo is None:
        raise bad(f"filter {name}: {text[:60]!r} has no UTC offset (write e.g. +08:00)")
    ts = dt.timestamp()
    if not in_window(ts):
        raise bad(f"filter {name}: {text[:60]!r} is outside the times this service keeps")
    return fmt_time(ts)


def comparisons(filters: Mapping[str, list[str]], name: str) -> list[tuple[str, str]]:
    """(op, +08:00 text) of a date-time attribute's filters: eq for the bare name."""
    out: list[tuple[str, str]] = []
    for key, values in filters.items():
        base, _, op = key.partition(".")
        if base != name:
            continue
        for value in values:
            out.append((op or "eq", instant(key, value)))
    return out


def list_answer(items: list[dict], total: int, offset: int) -> Response:
    """A TMF list: 200 with X-Total-Count (all matches) and X-Result-Count (this page);
    X-Next-Offset while more match."""
    headers = {"X-Total-Count": str(total), "X-Result-Count": str(len(items))}
    if offset + len(items) < total:
        headers["X-Next-Offset"] = str(offset + len(items))
    return Response(orjson.dumps(items), media_type="application/json", headers=headers)


def one(body: dict, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=dict(headers or {}))


LIST_HEADERS = {200: {"headers": {
    "X-Total-Count": {"description": "items matching the filters", "schema": {"type": "integer"}},
    "X-Result-Count": {"description": "items in this answer", "schema": {"type": "integer"}},
    "X-Next-Offset": {"description": "present when more items match: pass it as `offset`",
                      "schema": {"type": "integer"}}}}}


def base_url(request: Request) -> str:
    """The absolute root for hrefs (the scheme and host the client used)."""
    return str(request.base_url).rstrip("/")
