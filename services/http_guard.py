"""HTTP hardening shared by every faultline app: the embedded one (`faultline run`), the
production api (`faultline api`) and each production process's ops app (issue 7, part 4).

- `HttpGuard`, an ASGI middleware, reads every request body itself before the app sees it:
  a Content-Length over the limit is answered 413 at once, a chunked body is counted as it
  streams and refused at the limit (413), nothing past the limit is kept (the rest of a
  refused body of at most 4 MiB is read and dropped, so a client still sending reads the
  answer instead of a reset; a larger one is not read, the connection is closed); a body that
  does not arrive within the body timeout is answered 408; a body that is not JSON by its
  content type is answered 415 (`text/plain`, forms and multipart are what a web page can
  post cross-site without a CORS preflight); NUL in the path or query is answered 400; and a
  client that goes away mid-request costs one log line, not a traceback.
- `decode_json`: the one reading of a JSON body, refusing what could not be stored later.
- `new_app` builds a FastAPI app whose /docs and /redoc load their assets from the
  `fastapi-offline` package instead of a CDN (an operator's browser may have no internet).
- `harden` puts the guard (and CORS, only when FAULTLINE_CORS_ORIGINS names origins) on an app.
- `uvicorn_config` gives the server settings that bound what slow or many clients can hold.
- `Limit`, `Offset`, `PAGE_HEADERS`, `paged`: one way to page every list of both apps.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import uvicorn
from fastapi import FastAPI, Query, Response
from fastapi_offline import FastAPIOffline
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.config import UsageError

log = logging.getLogger("faultline.http")

MiB = 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DRAIN_BYTES = 4 * MiB        # a refused body up to this size is read and dropped (see _refuse_after)
MAX_INT64 = 2**63 - 1        # bound of every integer query parameter: the databases' BIGINT

Limit = Annotated[int, Query(ge=1, le=5000, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT64, description="skip this many matching items "
                                                            "(the previous answer's X-Next-Offset)")]
PAGE_HEADERS = {200: {"headers": {
    "X-Result-Count": {"description": "items in this answer", "schema": {"type": "integer"}},
    "X-Next-Offset": {"description": "present when more items match: pass it as `offset`",
                      "schema": {"type": "integer"}}}}}


def paged(rows: list, offset: int, more: bool, **headers: str) -> Response:
    """A page of a list as JSON (orjson, no pydantic pass), with its paging headers."""
    head = {"X-Result-Count": str(len(rows)), **headers}
    if more:
        head["X-Next-Offset"] = str(offset + len(rows))
    return Response(orjson.dumps(rows), media_type="application/json", headers=head)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What a client may cost the service; each also a FAULTLINE_* variable (`from_env`)."""

    max_body_bytes: int = 1 * MiB          # FAULTLINE_HTTP_MAX_BODY_BYTES
    body_timeout_s: float = 10.0           # FAULTLINE_HTTP_BODY_TIMEOUT_S: the whole body, per request
    cors_origins: tuple[str, ...] = ()     # FAULTLINE_CORS_ORIGINS, comma-separated; empty: no CORS
    max_connections: int = 1000            # FAULTLINE_HTTP_MAX_CONNECTIONS: more are answered 503 at once
    keep_alive_s: int = 5                  # idle keep-alive connections are closed after this
    max_header_bytes: int = 16 * 1024      # request line + headers (h11's incomplete-event limit)
    backlog: int = 2048

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpLimits:
        env = os.environ if env is None else env
        d = cls()
        origins = tuple(o.strip() for o in env.get("FAULTLINE_CORS_ORIGINS", "").split(",") if o.strip())
        return cls(max_body_bytes=_positive(env, "FAULTLINE_HTTP_MAX_BODY_BYTES", d.max_body_bytes, int),
                   body_timeout_s=_positive(env, "FAULTLINE_HTTP_BODY_TIMEOUT_S", d.body_timeout_s, float),
                   cors_origins=origins,
                   max_connections=_positive(env, "FAULTLINE_HTTP_MAX_CONNECTIONS", d.max_connections, int))


def _positive(env: Mapping[str, str], name: str, default, kind):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{name}: {raw!r} is not a positive number")
    return value


# ---------------------------------------------------------------------- the middleware

class _Gone(Exception):
    def __init__(self, received: int) -> None:
        self.received = received


def is_json(content_type: str | None) -> bool:
    """application/json or application/*+json, parameters (charset) allowed."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, sub = media.partition("/")
    return kind == "application" and (sub == "json" or (sub.endswith("+json") and len(sub) > 5))


class HttpGuard:
    """See the module's docstring. Only body-carrying methods are read ahead; the app then
    gets the whole body in one message, so no handler can be held by a slow client."""

    def __init__(self, app: ASGIApp, limits: HttpLimits | None = None) -> None:
        self.app = app
        self.limits = limits or HttpLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        what = f"{scope['method']} {scope['path']}"
        query = scope.get("query_string", b"")
        if "\x00" in scope["path"] or b"\x00" in query or b"%00" in query:
            # No id, queue or city holds NUL, and PostgreSQL text refuses it (an error, not a miss).
            await _refuse(send, 400, "NUL character in the request path or query")
            return
        if scope["method"] in BODY_METHODS:
            try:
                async with asyncio.timeout(self.limits.body_timeout_s):
                    body = await self._take_body(Headers(scope=scope), receive, send)
            except TimeoutError:
                log.info("%s: request body not received within %gs; answered 408",
                         what, self.limits.body_timeout_s)
                await _refuse(send, 408, f"request body not received within {self.limits.body_timeout_s:g} s")
                return
            except _Gone as gone:
                log.info("%s: client went away after %d bytes of the request body", what, gone.received)
                return
            if body is None:                       # refused, answered
                return
            receive = _replay(body, receive)
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            # The app read on after the client left: starlette raises; nobody is there to answer.
            log.info("%s: client went away before the answer", what)

    async def _take_body(self, headers: Headers, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once a refusal is sent (413, 415, 400)."""
        limit = self.limits.max_body_bytes
        length = headers.get("content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if length is not None and declared is None:          # h11 refuses most of these already
            await _refuse(send, 400, "content-length is not a number")
            return None
        if not is_json(headers.get("content-type")):
            await self._refuse_after(receive, send, declared, 415,
                                     "content-type must be application/json (or application/*+json)")
            return None
        if declared is not None and declared > limit:
            await self._refuse_after(receive, send, declared, 413, f"request body over {limit} bytes")
            return None
        chunks, size = [], 0
        while True:
            chunk, more = await _next_chunk(receive, size)
            size += len(chunk)
            if size > limit:
                await self._refuse_after(receive, send, None, 413, f"request body over {limit} bytes",
                                         already=size)
                return None
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)

    async def _refuse_after(self, receive: Receive, send: Send, declared: int | None, status: int,
                            reason: str, already: int = 0) -> None:
        """Refuse; but first read and drop the rest of a body of at most DRAIN_BYTES, so that the
        client, still sending, gets the answer instead of a connection reset. A larger body is
        not read: the answer closes the connection."""
        drained = declared is None or declared <= DRAIN_BYTES
        if drained and declared != 0:
            size, more = already, True
            while more and size <= DRAIN_BYTES:
                chunk, more = await _next_chunk(receive, size)
                size += len(chunk)
            drained = not more
        await _refuse(send, status, reason, close=not drained)


async def _next_chunk(receive: Receive, received: int) -> tuple[bytes, bool]:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _Gone(received)
    return message.get("body", b""), message.get("more_body", False)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then the real channel (a disconnect, as the app expects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed


async def _refuse(send: Send, status: int, reason: str, close: bool = True) -> None:
    body = orjson.dumps({"detail": reason})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:                   # the rest of an unread body must not be taken for the next request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------- bodies

ENVELOPE_MARGIN = 16         # levels a body may be wrapped in on its way on (§3 input, log, dead letter)


def decode_json(raw: bytes) -> tuple[Any, str | None]:
    """(the body, None), or (its text, why it is refused).

    orjson, as every consumer of the topics reads; it reads up to 1024 levels of nesting but
    writes at most 254, so a body nested deeper than 254 less the envelopes it is carried on
    in could be read but never stored or published: refused here, not an error later."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return raw.decode("utf-8", "replace"), f"body is not valid JSON: {err}"
    wrapped = body
    for _ in range(ENVELOPE_MARGIN):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        return raw.decode("utf-8", "replace"), f"body is nested deeper than {254 - ENVELOPE_MARGIN} levels"
    return body, None


# ---------------------------------------------------------------------- apps and servers

def new_app(*, docs: bool = True, **kwargs: Any) -> FastAPI:
    """A FastAPI app; with `docs`, /docs and /redoc are served without any CDN."""
    if not docs:
        return FastAPI(docs_url=None, redoc_url=None, **kwargs)
    # validatorUrl None: Swagger UI would otherwise fetch a badge from validator.swagger.io.
    return FastAPIOffline(swagger_ui_parameters={"validatorUrl": None}, **kwargs)


def harden(app: FastAPI, limits: HttpLimits | None = None) -> FastAPI:
    limits = limits or HttpLimits()
    app.add_middleware(HttpGuard, limits=limits)
    if limits.cors_origins:                # added last, so outermost: preflights never reach the guard
        app.add_middleware(CORSMiddleware, allow_origins=list(limits.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["content-type", "authorization"])
    return app


def uvicorn_config(app: ASGIApp, host: str, port: int, limits: HttpLimits | None = None,
                   **kwargs: Any) -> uvicorn.Config:
    limits = limits or HttpLimits()
    return uvicorn.Config(app, host=host, port=port, timeout_keep_alive=limits.keep_alive_s,
                          limit_concurrency=limits.max_connections, backlog=limits.backlog,
                          h11_max_incomplete_event_size=limits.max_header_bytes,
                          # Shutdown waits this long for open connections, not for the slowest client.
                          timeout_graceful_shutdown=10, **kwargs)
