"""HTTP hardening shared by every faultline app: the embedded one (`faultline run`), the
production api (`faultline api`) and each production process's ops app (issue 7, part 4).

- `HttpGuard`, an ASGI middleware, reads every request body itself before the app sees it:
  a Content-Length over the limit is answered 413 at once, a chunked body is counted as it
  streams and refused at the limit (413), nothing past the limit is kept (the rest of a
  refused body of at most 4 MiB is read and dropped, so a client still sending reads the
  answer instead of a reset; a larger one is not read, the connection is closed; nor is the
  body of a client that sent `Expect: 100-continue`: it is told at once, never invited to
  send); a body that does not arrive within the body timeout is answered 408; a body that is
  not JSON by its content type is answered 415 (`text/plain`, forms and multipart are what a
  web page can post cross-site without a CORS preflight); a request of any other method
  (GET, HEAD, DELETE, OPTIONS) that carries a body is answered 400 at once and its
  connection closed (no endpoint reads one, and an unread body must not hold the
  connection); NUL in the path or query is answered 400; and a client that goes away
  mid-request costs one log line, not a traceback.
- `HeadDeadline`, uvicorn's h11 protocol with one more timer: a connection that has not
  delivered a complete request head within the body timeout of connecting, or of its last
  answer, is closed. uvicorn arms none before the first request, and any data cancels its
  keep-alive timer, so without it silent or trickling sockets hold the connection slots
  (`max_connections`) for ever.
- `decode_json`: the one reading of a JSON body, refusing what could not be stored later;
  `IntakeSlots` bounds how many decoded bodies intake holds at once (a decoded 1 MiB body
  of `{}`s is ~23 MiB of Python objects); `alarm_list_refusal` (MAX_ALARMS) and
  `action_refusal` are the checks both apps make on a decoded alarm body or action, so both
  refuse the same input with the same reason.
- `harden` puts the guard (and CORS, only when FAULTLINE_CORS_ORIGINS names origins) on an app.
- `uvicorn_config` gives the server settings that bound what slow or many clients can hold.
- `Limit`, `Offset`, `PAGE_HEADERS`, `paged`: one way to page every list of both apps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
import uvicorn
from fastapi import FastAPI, Query, Response
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from services.http.tmf import error_body
from services.settings import HttpLimits, MiB
from shared.wire import ACTION_KINDS, kind_refusal, show

log = logging.getLogger("faultline.http")

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


# ---------------------------------------------------------------------- the middleware

class _Gone(Exception):
    def __init__(self, received: int) -> None:
        self.received = received


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    reason: str
    close: bool = True


def is_json(content_type: str | None) -> bool:
    """application/json or application/*+json, parameters (charset) allowed."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, sub = media.partition("/")
    return kind == "application" and (sub == "json" or (sub.endswith("+json") and len(sub) > 5))


def _carries_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    # h11 refuses a Content-Length that is not 1 to 20 digits before any app sees the request.
    return (length is not None and int(length) > 0) or "transfer-encoding" in headers


INVENTORY_PATH = "/inventory"      # a whole inventory: FAULTLINE_HTTP_MAX_INVENTORY_BYTES


class HttpGuard:
    """See the module's docstring. Only body-carrying methods are read ahead; the app then
    gets the whole body in one message, so no handler can be held by a slow client."""

    def __init__(self, app: ASGIApp, limits: HttpLimits | None = None) -> None:
        self.app = app
        self.limits = limits or HttpLimits()
        self.inventory_slot = asyncio.Lock()     # one inventory body (up to its larger limit) at a time

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
        headers = Headers(scope=scope)
        if scope["method"] == "POST" and scope["path"] == INVENTORY_PATH:
            if self.inventory_slot.locked():
                await _refuse(send, 503, "an inventory load is in progress; try again when it is done")
                return
            async with self.inventory_slot:
                await self._guarded(scope, receive, send, headers, what, self.limits.max_inventory_bytes)
            return
        await self._guarded(scope, receive, send, headers, what, self.limits.max_body_bytes)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, headers: Headers, what: str,
                       limit: int) -> None:
        if scope["method"] in BODY_METHODS:
            timeout = self.limits.body_timeout_s
            try:
                # Only reading is timed: an answer is sent after this block, so the timer can
                # never fire between its start and its body.
                async with asyncio.timeout(timeout):
                    body = await self._take_body(headers, receive, limit)
            except TimeoutError:
                log.info("%s: request body not received within %gs; answered 408", what, timeout)
                body = _Refusal(408, f"request body not received within {timeout:g} s")
            except _Gone as gone:
                log.info("%s: client went away after %d bytes of the request body", what, gone.received)
                return
            if isinstance(body, _Refusal):
                await _refuse(send, body.status, body.reason, close=body.close)
                return
            receive = _replay(body, receive)
        elif _carries_body(headers):
            # Nothing here reads the body of a GET: unread, it would hold the connection (and its
            # slot) for as long as the client cares to trickle it. Refused unread, and closed.
            await _refuse(send, 400, f"a {scope['method']} request carries no body")
            return
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            # The app read on after the client left: starlette raises; nobody is there to answer.
            log.info("%s: client went away before the answer", what)

    async def _take_body(self, headers: Headers, receive: Receive, limit: int) -> bytes | _Refusal:
        """The whole body, or the refusal to send (413, 415) once what should be is drained."""
        length = headers.get("content-length")
        declared = int(length) if length is not None else None      # digits: h11 checked
        # A client that asked to be told before it sends (Expect: 100-continue) is told at once:
        # draining would make uvicorn invite the body it is about to refuse.
        waiting = headers.get("expect", "").strip().lower() == "100-continue"
        if not is_json(headers.get("content-type")):
            return await self._refuse_after(receive, declared, waiting, 415,
                                            "content-type must be application/json (or application/*+json)")
        if declared is not None and declared > limit:
            return await self._refuse_after(receive, declared, waiting, 413,
                                            f"request body over {limit} bytes")
        chunks, size = [], 0
        while True:
            chunk, more = await _next_chunk(receive, size)
            size += len(chunk)
            if size > limit:
                return await self._refuse_after(receive, None, False, 413, f"request body over {limit} bytes",
                                                already=size)
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)

    async def _refuse_after(self, receive: Receive, declared: int | None, waiting: bool, status: int,
                            reason: str, already: int = 0) -> _Refusal:
        """Refuse; but first read and drop the rest of a body of at most DRAIN_BYTES, so that the
        client, still sending, gets the answer instead of a connection reset. A larger body, or
        one the client waits to be invited to send, is not read: the answer closes the connection."""
        if waiting or declared == 0:
            return _Refusal(status, reason, close=declared != 0)
        drained = declared is None or declared <= DRAIN_BYTES
        if drained:
            size, more = already, True
            while more and size <= DRAIN_BYTES:
                chunk, more = await _next_chunk(receive, size)
                size += len(chunk)
            drained = not more
        return _Refusal(status, reason, close=not drained)


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
    # `detail`, as every refusal of the app; and TMF630's Error fields, as the TMF paths answer.
    body = orjson.dumps(error_body(status, reason))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:                   # the rest of an unread body must not be taken for the next request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------- connections

class HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol (uvicorn/protocols/http/h11_impl.py), plus: a connection must
    deliver a complete request head within `head_timeout_s` of connecting and of each answer,
    or it is closed. uvicorn's own keep-alive timer is armed only after an answer and cancelled
    by any incoming data, so two silent sockets and two sending a header line every few seconds
    would hold four connection slots for ever; this timer is cancelled only by a whole head.

    Hooks: `connection_made` and `on_response_complete` arm the timer; `_should_upgrade`, which
    uvicorn calls for each complete head (h11.Request) before anything else is done with it,
    disarms it; `connection_lost` disarms it. `uvicorn_config` makes a subclass per limits."""

    head_timeout_s: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _should_upgrade(self) -> bool:
        self._disarm_head_timer()              # a whole request head is here
        return super()._should_upgrade()

    def on_response_complete(self) -> None:
        # Armed before uvicorn goes on to a pipelined request (which disarms it again).
        if not self.transport.is_closing():
            self._arm_head_timer()
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        # Part of a head waiting in h11's buffer: a client too slow (or trickling on purpose),
        # logged; nothing at all: an idle connection, closed quietly (as keep-alive would).
        partial = len(self.conn.trailing_data[0])
        log.log(logging.INFO if partial else logging.DEBUG,
                "%s: request head incomplete after %gs (%d bytes); connection closed",
                "%s:%d" % self.client if self.client else "a client", self.head_timeout_s, partial)
        self.transport.close()


def head_deadline(timeout_s: float) -> type[HeadDeadline]:
    return type("HeadDeadline", (HeadDeadline,), {"head_timeout_s": timeout_s})


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


class IntakeSlots:
    """At most `n` request bodies decoded and held by intake at once, across an app's intake
    endpoints: a decoded 1 MiB body of `{}`s is ~23 MiB of Python objects, so a burst of large
    posts would otherwise cost their number times that. Raw bodies (at most the body limit
    each, within the connection limit) wait for a slot undecoded."""

    def __init__(self, n: int) -> None:
        self._free = asyncio.Semaphore(n)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._free:
            yield


MAX_ALARMS = 1000          # alarms in one POST /alarms list (both apps)


def alarm_list_refusal(body: Any) -> str | None:
    """Why an alarm body is refused whole, or None. Each item is one engine step and one commit
    (embedded) or one record of one send (api): a 1 MiB list of `0`s would hold intake for minutes."""
    if isinstance(body, list) and len(body) > MAX_ALARMS:
        return f"a list of {len(body)} alarms; at most {MAX_ALARMS} in one request"
    return None


def action_refusal(body: Any) -> str | None:
    """Why a body is not an operator action at all (not an object, or no known kind), or None."""
    if not isinstance(body, dict):
        return f"expected a JSON object, got {show(body)}"
    return kind_refusal(body.get("kind"), ACTION_KINDS)


# ---------------------------------------------------------------------- apps and servers

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
    # h11, named: "auto" would pick httptools when installed, which has no HeadDeadline.
    return uvicorn.Config(app, host=host, port=port, http=head_deadline(limits.body_timeout_s),
                          timeout_keep_alive=limits.keep_alive_s,
                          limit_concurrency=limits.max_connections, backlog=limits.backlog,
                          h11_max_incomplete_event_size=limits.max_header_bytes,
                          # Shutdown waits this long for open connections, not for the slowest client.
                          timeout_graceful_shutdown=10, **kwargs)


async def serve_until_stopped(app: FastAPI, port: int, stop: asyncio.Event, limits: HttpLimits,
                              host: str) -> None:
    """Serve `app` on `host`:`port` (the process's settings.http_host and http_port) behind
    the guard's server settings until `stop`; then let open requests finish (10 s at most)."""
    config = uvicorn_config(app, host, port, limits, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None       # SIGTERM is ours: drain, then stop
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
