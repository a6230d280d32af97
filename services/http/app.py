"""The HTTP API of faultline (CONTRACT §4), one app for both ways it runs: `faultline api`
next to the Kafka processes, and `faultline run` with every stage in one process. A mode
gives a `Face`: the producer intake publishes with (the transport port), the database the
stages keep (the read model, the shard logs, the outbox, the refusals), its metrics
registry, its health, readiness and warnings, its HTTP limits, its clock and, when it has
loaded one, the inventory. This is the one module that builds FastAPI apps: `build_app(face)`,
and `build_ops_app(ops)`, the port of a process that serves only /healthz, /readyz and
/metrics (correlate, dispatch, ingest). Their /docs and /redoc load every asset from the
fastapi-offline package: monitoring rooms sit on isolated networks.

Intake never calls a stage. An accepted input is published — alarms to faultline.alarms
(keyed by resource), complaints and operator actions (§3 objects, without `at`) to
faultline.actions, TMF642 alarms as they came to faultline.alarms.raw.tmf642 — stamped
with the mode's clock (`face.now_ms`; `faultline run` runs on an accelerated demo clock),
and answered once the transport acknowledged it. A body that cannot be used — not JSON,
a field of the wrong type, an unknown kind, an action whose `select` names no city's faults
(when the inventory is known, the router's own check) — is refused at once: 422 with the
reason, kept on faultline.deadletter (cut to fit a message, services/drivers/dead_letters.py). An
accepted value too large for one message is answered 413, nothing sent. At most
`limits.max_decoded_bodies` bodies are decoded and held at once (`IntakeSlots`); the slot
is let go before an answer waits for an outcome.

The outcome of an input (RULES.md CL-4: a work-order system must learn that its action was
refused). Whether the rules take an input is decided later, by the stages, so intake
answers each input's id: `topic:partition:offset@timestamp_ms`, the coordinates of the
message it became (shared.transport.port.Msg.coordinates). The router passes them on as
the `source` of what it sends the correlate stage; the correlate city shard logs the input
under that source key, or refuses it and keeps the refusal under it (`rejected`); the
notices it sends the dispatch stage carry ids of their own, which dispatch logs or refuses
the same way. So an input is

- `refused` when a refusal is kept for it or for one of its notices (the reason is that
  refusal's, as replay's `input.rejected` would give it);
- `accepted` once correlate has handled it and dispatch every notice it made (`records`:
  the decision records made for it, by both stages);
- `pending` until then.

`GET /inputs/{input_id}?wait_s=N` answers it, waiting up to N seconds (0..30) while it is
pending. Intake takes the same `wait_s`: one input waits for its outcome and is answered 422
with the reason when refused (as the embedded engine always answered), 202 otherwise; a list
is answered 202 with the outcome of each. Without `wait_s` intake answers 202 as soon as the
inputs are published, every one `pending`. The answer (IntakeAnswer) keeps the embedded
app's fields (`accepted`, `rejected`, `reasons` [{index, reason}], `records`) and the
production api's (`refused`, the reasons), and adds `input_ids` (in request order; null for
an input refused before publishing) and `pending`. Limits: a TMF642 alarm is normalized by
the ingest stage into a message of its own, so its id names the raw message and its outcome
is not traced (no `wait_s`); an alarm on a resource shared by cities reaches several city
shards, and without the inventory `GET /inputs` counts it accepted once one shard has
handled it (intake, knowing the inventory, waits for each).

Reads come from the database a page at a time (services/http/reads.py); `/decisions` reads
the records kept in `audit` (seq = audit.id). Bodies are checked by services/http/guard.py
(JSON content type, size, time) and decoded with orjson.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from alarm_ingest.normalized import alarm_from_dict
from services.drivers.dead_letters import MAX_VALUE, fits
from services.drivers.dead_letters import dead_letter as letter
from services.drivers.sharding import all_shards
from services.drivers.split import shards_for
from services.http.guard import (
    MAX_INT64,
    PAGE_HEADERS,
    HttpLimits,
    IntakeSlots,
    Limit,
    Offset,
    action_refusal,
    alarm_list_refusal,
    decode_json,
    harden,
    paged,
)
from services.http.models import (
    ACTION_BODY,
    ALARMS_BODY,
    COMPLAINT_BODY,
    TMF642_BODY,
    DecisionsPage,
    FaultOut,
    InputOutcome,
    IntakeAnswer,
    Problem,
    QueryProblem,
    Status,
    TroubleTicket,
    WorkOrderOut,
    trouble_ticket,
)
from services.http.reads import (
    decisions_after,
    fault_one,
    fault_page,
    input_outcomes,
    order_count,
    order_one,
    order_page,
    parse_input_id,
)
from shared.inventory import Inventory
from shared.model import Rejected
from shared.topics import ACTIONS, ALARMS, DEADLETTER, raw_alarms_topic
from shared.transport.port import Producer, Record
from shared.wire import action_from_dict, complaint_from_dict

log = logging.getLogger("faultline.http")

TMF642 = "/tmf-api/alarmManagement/v4/alarm"
TMF621 = "/tmf-api/troubleTicket/v4/troubleTicket"
MAX_WAIT_S = 30
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.02, 0.2        # a wait's polls: 20 ms, growing to 200 ms

Wait = Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for the outcome while "
                                                               "it is pending (0: answer at once)")]


def wall_ms() -> int:
    return int(time.time() * 1000)


def no_warnings() -> list[str]:
    return []


@dataclass(frozen=True)
class Face:
    """What the HTTP API needs of the mode it runs in."""

    producer: Producer                                  # intake publishes with it (send_many)
    db: AsyncEngine                                     # the migrated schema: read model, logs, outbox
    registry: CollectorRegistry                         # /metrics
    health: Callable[[], str | None]                    # None: alive; else why not (/healthz 503)
    ready: Callable[[], Awaitable[list[str]]]           # problems: /readyz 503 when any
    warnings: Callable[[], list[str]] = no_warnings     # listed by /readyz, never making it unready
    limits: HttpLimits = field(default_factory=HttpLimits)
    now_ms: Callable[[], int] = wall_ms                 # the message time intake stamps
    inventory: Inventory | None = None                  # names, shards, the router's check


def _new_app(*, docs: bool = True, **kwargs: Any) -> FastAPI:
    """A FastAPI app; with `docs`, /docs and /redoc are served without any CDN."""
    if not docs:
        return FastAPI(docs_url=None, redoc_url=None, **kwargs)
    # validatorUrl None: Swagger UI would otherwise fetch a badge from validator.swagger.io.
    return FastAPIOffline(swagger_ui_parameters={"validatorUrl": None}, **kwargs)


def build_app(face: Face) -> FastAPI:
    app = _new_app(title="faultline", description="Alarm correlation and fault dispatch (CONTRACT §4)")
    app.include_router(intake_routes(face))
    app.include_router(read_routes(face))
    app.include_router(ops_routes(face))
    app.add_exception_handler(_Refusal, _refused)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    _document_guard(app)
    return harden(app, face.limits)


GUARD_ANSWERS = {
    "400": "a NUL character in the path or query (the HTTP guard)",
    "408": "the request body did not arrive in time (the HTTP guard)",
    "413": "the request body is larger than allowed (the HTTP guard)",
    "415": "the request body is not declared JSON (the HTTP guard)",
}


def _document_guard(app: FastAPI) -> None:
    """The HTTP guard (services/http/guard.py) answers before any route: its refusals are in
    every operation's responses of the OpenAPI document (400 on all; 408, 413, 415 on those
    that take a body), as {detail: string}."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        ref = {"$ref": "#/components/schemas/Problem"}
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", Problem.model_json_schema())
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                answers = operation.setdefault("responses", {})
                codes = ("400", "408", "413", "415") if method in ("post", "put", "patch") else ("400",)
                for code in codes:
                    answers.setdefault(code, {"description": GUARD_ANSWERS[code],
                                              "content": {"application/json": {"schema": ref}}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


# ---------------------------------------------------------------------- outcomes

class Outcomes:
    """The outcomes of inputs, read from the database (services/http/reads.py), waited for."""

    def __init__(self, face: Face) -> None:
        self.db = face.db
        self.shards = all_shards(face.inventory) if face.inventory is not None else None

    async def read(self, inputs: Mapping[str, Sequence[str] | None]) -> dict[str, dict]:
        async with self.db.connect() as conn:
            return await input_outcomes(conn, inputs, shards=self.shards)

    async def wait(self, inputs: Mapping[str, Sequence[str] | None], wait_s: float) -> dict[str, dict]:
        """Each input's outcome, polling (20 ms, growing to 200 ms) while any is pending, for at
        most `wait_s` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        pause, known, undecided = FIRST_PAUSE_S, {}, dict(inputs)
        while True:
            known.update(await self.read(undecided))
            undecided = {i: e for i, e in undecided.items() if known[i]["status"] == "pending"}
            left = deadline - loop.time()
            if not undecided or left <= 0:
                return known
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 1.5, LONGEST_PAUSE_S)


# ---------------------------------------------------------------------- intake

class _Refusal(Exception):
    """An input refused before publishing, its dead letter sent: answered 422 (`_refused`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    reason = exc.reason if isinstance(exc, _Refusal) else str(exc)
    return JSONResponse(_body([None], {0: reason}, {}, awaited=False, single=True), status_code=422)


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse({"detail": f"database unavailable: {type(exc).__name__}"}, status_code=503)


class _TooLarge(HTTPException):
    def __init__(self, what: str, size: int) -> None:
        super().__init__(413, f"{what} is {size} bytes once encoded; at most {MAX_VALUE} fit a message")


@dataclass(slots=True)
class _Batch:
    """What one request sends: per input, its record (a message, or the dead letter of a
    refused one), the refusal's reason, and the shards that must handle it (when known)."""

    kind: str
    records: list[Record] = field(default_factory=list)
    refusals: dict[int, str] = field(default_factory=dict)
    expect: dict[int, Sequence[str] | None] = field(default_factory=dict)

    def take(self, record: Record, shards: Sequence[str] | None) -> None:
        self.expect[len(self.records)] = shards
        self.records.append(record)

    def refuse(self, record: Record, reason: str) -> None:
        self.refusals[len(self.records)] = reason
        self.records.append(record)


class _Intake:
    """What the intake endpoints share: the producer, the counter, the outcomes, and how a
    body becomes records (accepted, or refused and dead-lettered)."""

    def __init__(self, face: Face) -> None:
        self.face = face
        self.producer = face.producer
        self.outcomes = Outcomes(face)
        self.slots = IntakeSlots(face.limits.max_decoded_bodies)
        self.counted = Counter("faultline_api_inputs", "Inputs received over HTTP, by kind and outcome",
                               ["kind", "outcome"], registry=face.registry)

    def message(self, kind: str, topic: str, value: object, key: str | None) -> Record:
        """An accepted value as the record to send; 413 (nothing sent) if it could never be sent:
        Kafka refuses a record over 1 MiB, and a smaller body can encode larger."""
        encoded = orjson.dumps(value)
        if not fits(encoded):
            self.counted.labels(kind, "too_large").inc()
            raise _TooLarge(kind, len(encoded))
        return (topic, encoded, key, None, self.face.now_ms())

    def dead_letter(self, reason: str, body: Any) -> Record:
        """A refused input as the message that keeps it on faultline.deadletter: the body cut
        to fit (services/drivers/dead_letters.py), whatever its size."""
        return (DEADLETTER, letter(reason, "api", body), None, None, self.face.now_ms())

    async def refuse(self, kind: str, reason: str, body: Any) -> Exception:
        """Send the dead letter; the caller raises what this returns (422)."""
        await self.producer.send_many([self.dead_letter(reason, body)])
        self.counted.labels(kind, "refused").inc()
        return _Refusal(reason)

    async def json_body(self, request: Request, kind: str) -> Any:
        """The body (services/http/guard.decode_json), or 422 once it is dead-lettered; an alarm
        list over the cap is kept as the text it came as, its decoded items dropped at once."""
        raw = await request.body()
        body, reason = decode_json(raw)
        if reason is None and kind == "alarm" and (reason := alarm_list_refusal(body)) is not None:
            body = raw.decode("utf-8", "replace")
        if reason is not None:
            raise await self.refuse(kind, reason, body)
        return body

    def check(self, event: object) -> tuple[list[str] | None, str | None]:
        """(None, why) for a decoder's refusal or an input the router could not route (when the
        inventory is known); else (the city shards the router sends it to, or None, None)."""
        if isinstance(event, Rejected):
            return None, event.reason
        if self.face.inventory is None:
            return None, None
        cities = shards_for(self.face.inventory, event)
        return (None, cities.reason) if isinstance(cities, Rejected) else (cities, None)

    async def publish(self, batch: _Batch) -> list[str | None]:
        """Send every record of the batch in one round of acks; each input's id (None when refused)."""
        sent = await self.producer.send_many(batch.records)
        ids: list[str | None] = []
        for i, ((topic, _v, _k, _p, ts), (partition, offset)) in enumerate(zip(batch.records, sent,
                                                                                  strict=True)):
            ids.append(None if i in batch.refusals else f"{topic}:{partition}:{offset}@{ts}")
        self.counted.labels(batch.kind, "accepted").inc(len(ids) - len(batch.refusals))
        if batch.refusals:
            self.counted.labels(batch.kind, "refused").inc(len(batch.refusals))
        return ids

    async def answer(self, batch: _Batch, ids: list[str | None], wait_s: float, single: bool) -> JSONResponse:
        """202, or 422 for a single input refused while it was waited for."""
        outcomes: dict[str, dict] = {}
        waited = {i: batch.expect.get(n) for n, i in enumerate(ids) if i is not None}
        if wait_s > 0 and waited:
            try:
                outcomes = await self.outcomes.wait(waited, wait_s)
            except (OperationalError, InterfaceError) as err:       # published: say pending, not 5xx
                log.warning("outcome of %d input(s) unknown: database unavailable (%s)", len(waited),
                            type(err).__name__)
        body = _body(ids, batch.refusals, outcomes, awaited=wait_s > 0, single=single)
        return JSONResponse(body, status_code=422 if single and body["rejected"] else 202)


def _body(ids: list[str | None], refusals: Mapping[int, str], outcomes: Mapping[str, dict], *,
          awaited: bool, single: bool) -> dict:
    """The IntakeAnswer of a request: per input, refused before publishing (`refusals`), or as
    its outcome says (pending when not awaited or not decided in time)."""
    reasons, pending, records = [], 0, 0
    for n, input_id in enumerate(ids):
        reason = refusals.get(n)
        outcome = outcomes.get(input_id) if input_id is not None else None
        if reason is None and (outcome is None or outcome["status"] == "pending"):
            pending += input_id is not None
            continue
        if outcome is not None:
            records += outcome["records"] or 0
            reason = outcome["reason"]
        if reason is not None:
            reasons.append({"index": n, "reason": reason})
    body = {"accepted": len(ids) - len(reasons), "rejected": len(reasons), "reasons": reasons,
            "records": records if awaited else None, "refused": [r["reason"] for r in reasons],
            "input_ids": ids, "pending": pending}
    if single and reasons:
        body["detail"] = reasons[0]["reason"]
    return body


_INTAKE_ANSWERS: dict[int | str, dict[str, Any]] = {
    422: {"model": IntakeAnswer | QueryProblem,
          "description": "refused: the reason is in `detail` and `reasons` (a bad query parameter, such "
                         "as wait_s: `detail` lists the problems, as on every route)"},
    413: {"description": "an accepted value too large for one message; nothing sent"}}


def intake_routes(face: Face) -> APIRouter:
    io = _Intake(face)
    router = APIRouter(tags=["intake"])

    @router.post("/alarms", status_code=202, response_model=IntakeAnswer, openapi_extra=ALARMS_BODY,
                 responses=_INTAKE_ANSWERS)
    async def post_alarms(request: Request, wait_s: Wait = 0) -> JSONResponse:
        """One normalized alarm (CONTRACT §2) or a list (at most 1,000); a list is answered 202
        with the outcome of each item."""
        async with io.slots.slot():          # held while the handler decodes and holds the body
            body = await io.json_body(request, "alarm")
            listed = isinstance(body, list)
            batch = _Batch("alarm")
            for i, item in enumerate(body if listed else [body]):
                alarm = alarm_from_dict(item, f"alarms[{i}]" if listed else "alarm")
                shards, reason = io.check(alarm)
                if reason is not None and not listed:
                    raise await io.refuse("alarm", reason, item)
                if reason is not None:
                    batch.refuse(io.dead_letter(reason, item), reason)
                else:
                    batch.take(io.message("alarm", ALARMS, item, alarm.resource_id), shards)
            del body
            ids = await io.publish(batch)
        return await io.answer(batch, ids, wait_s, single=not listed)

    @router.post("/complaints", status_code=202, response_model=IntakeAnswer, openapi_extra=COMPLAINT_BODY,
                 responses=_INTAKE_ANSWERS)
    async def post_complaint(request: Request, wait_s: Wait = 0) -> JSONResponse:
        """A complaint (CONTRACT §3); the wrapped form {"kind": "complaint", "complaint": {...}} also."""
        async with io.slots.slot():
            body = await io.json_body(request, "complaint")
            if isinstance(body, dict) and body.get("kind") == "complaint" and "complaint" in body:
                body = body["complaint"]
            complaint = complaint_from_dict(body)
            shards, reason = io.check(complaint)
            if reason is not None:
                raise await io.refuse("complaint", reason, body)
            batch = _Batch("complaint")
            batch.take(io.message("complaint", ACTIONS, {"kind": "complaint", "complaint": body},
                                  complaint.city), shards)
            ids = await io.publish(batch)
        return await io.answer(batch, ids, wait_s, single=True)

    @router.post("/actions", status_code=202, response_model=IntakeAnswer, openapi_extra=ACTION_BODY,
                 responses=_INTAKE_ANSWERS)
    async def post_action(request: Request, wait_s: Wait = 0) -> JSONResponse:
        """An operator action: confirm, attribution, ack, resolve or escalate (CONTRACT §3, without
        `at`). Whether the rules take it (CL-4) is its outcome: `wait_s` to wait for it."""
        async with io.slots.slot():
            body = await io.json_body(request, "action")
            reason = action_refusal(body)
            if reason is not None:
                raise await io.refuse("action", reason, body)
            kind = body["kind"]
            action = action_from_dict(kind, body)
            shards, reason = io.check(action)
            if reason is not None:
                raise await io.refuse(kind, reason, body)
            batch = _Batch(kind)
            batch.take(io.message(kind, ACTIONS, {k: v for k, v in body.items() if k != "at"}, None), shards)
            ids = await io.publish(batch)
        return await io.answer(batch, ids, wait_s, single=True)

    @router.post(TMF642, status_code=202, response_model=IntakeAnswer, openapi_extra=TMF642_BODY,
                 responses=_INTAKE_ANSWERS)
    async def post_tmf642(request: Request) -> JSONResponse:
        """A TMF642 v4 Alarm, normalized by the ingest stage (which dead-letters what it cannot
        read). Its id names the raw message; its outcome is not traced."""
        async with io.slots.slot():
            body = await io.json_body(request, "tmf642")
            batch = _Batch("tmf642")
            batch.take(io.message("tmf642", raw_alarms_topic("tmf642"), body, None), None)
            ids = await io.publish(batch)
        return await io.answer(batch, ids, 0, single=True)

    @router.get("/inputs/{input_id}", response_model=InputOutcome,
                responses={404: {"description": "not the id of an input"}})
    async def get_input(input_id: str, wait_s: Wait = 0) -> JSONResponse:
        """What became of an input intake published (its id from `input_ids`): pending, accepted
        (with the number of decision records it made) or refused (with the reason, CL-4);
        waits up to `wait_s` seconds while it is pending."""
        if not parse_input_id(input_id):
            raise HTTPException(404, "not an input id: expected topic:partition:offset@timestamp_ms")
        outcome = (await io.outcomes.wait({input_id: None}, wait_s))[input_id]
        return JSONResponse(outcome)

    return router


# ---------------------------------------------------------------------- reads

def _one(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def read_routes(face: Face) -> APIRouter:
    db = face.db
    names = {c.customer_id: c.name for c in face.inventory.customers.values()} if face.inventory else None
    router = APIRouter()

    @router.get("/faults", tags=["faults"], response_model=list[FaultOut], responses=PAGE_HEADERS)
    async def list_faults(city: str | None = None, severity: str | None = None,
                          open: Annotated[bool | None, Query(description="only open (true) or ended "
                                                                         "(false) faults")] = None,
                          limit: Limit = 1000, offset: Offset = 0) -> Response:
        """Faults by opening time, a page at a time (X-Next-Offset while more match)."""
        async with db.connect() as conn:
            rows, more = await fault_page(conn, city, severity, open, offset, limit, names)
        return paged(rows, offset, more)

    @router.get("/faults/{fault_id}", tags=["faults"], response_model=FaultOut,
                responses={404: {"model": Problem, "description": "no fault of that id"}})
    async def get_fault(fault_id: str) -> Response:
        async with db.connect() as conn:
            body = await fault_one(conn, fault_id, names)
        if body is None:
            raise HTTPException(404, f"no fault {fault_id}")
        return _one(body)

    @router.get("/workorders", tags=["work orders"], response_model=list[WorkOrderOut],
                responses=PAGE_HEADERS)
    async def list_work_orders(queue: str | None = None, status: str | None = None,
                               limit: Limit = 1000, offset: Offset = 0) -> Response:
        """Work orders in creation order, a page at a time (X-Next-Offset while more match)."""
        async with db.connect() as conn:
            rows, more = await order_page(conn, queue, status, offset, limit)
        return paged(rows, offset, more)

    @router.get("/workorders/{work_order_id}", tags=["work orders"], response_model=WorkOrderOut,
                responses={404: {"model": Problem, "description": "no work order of that id"}})
    async def get_work_order(work_order_id: str) -> Response:
        async with db.connect() as conn:
            body = await order_one(conn, work_order_id)
        if body is None:
            raise HTTPException(404, f"no work order {work_order_id}")
        return _one(body)

    @router.get(TMF621, tags=["work orders"], response_model=list[TroubleTicket], responses=PAGE_HEADERS)
    async def get_trouble_tickets(status: str | None = None, limit: Limit = 1000, offset: Offset = 0):
        """Work orders as TMF621 TroubleTickets (status: the CL-2 lifecycle); TMF630 paging:
        `offset`/`limit`, X-Total-Count (all matches) and X-Result-Count (this page)."""
        async with db.connect() as conn:
            rows, more = await order_page(conn, None, status, offset, limit)
            total = await order_count(conn, None, status)
        return paged([trouble_ticket(o) for o in rows], offset, more, **{"X-Total-Count": str(total)})

    @router.get("/decisions", tags=["decisions"], response_model=DecisionsPage)
    async def list_decisions(after_seq: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0, limit: Limit = 500,
                             type: Annotated[list[str] | None, Query()] = None) -> Response:
        """Stored output records (CONTRACT §3) after `after_seq`, in the order they were kept."""
        async with db.connect() as conn:
            rows = await decisions_after(conn, after_seq, limit, type)
        return _one({"decisions": rows, "last_seq": rows[-1]["seq"] if rows else after_seq})

    return router


# ---------------------------------------------------------------------- operations

@dataclass(frozen=True, slots=True)
class Ops:
    """What /healthz, /readyz and /metrics of any process need (a `Face` has it too)."""

    registry: CollectorRegistry
    health: Callable[[], str | None]                    # None: alive; else why not
    ready: Callable[[], Awaitable[list[str]]]           # problems: 503 when any
    warnings: Callable[[], list[str]] = no_warnings


def build_ops_app(ops: Ops, limits: HttpLimits) -> FastAPI:
    """A process's own port (correlate, dispatch, ingest): nothing but the ops routes, behind
    the same guard as the API."""
    app = _new_app(docs=False, title="faultline process")
    app.include_router(ops_routes(ops))
    return harden(app, limits)


def ops_routes(face: Face | Ops) -> APIRouter:
    """/healthz (the mode's loops run), /readyz (and what they need answers; warnings such as the
    holiday calendar's end listed, never making it unready), /metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Status, responses={503: {"model": Status}})
    async def healthz() -> JSONResponse:
        problem = face.health()
        if problem is None:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "down", "detail": problem}, status_code=503)

    @router.get("/readyz", response_model=Status, responses={503: {"model": Status}})
    async def readyz() -> JSONResponse:
        problem = face.health()
        problems = ([f"down: {problem}"] if problem is not None else []) + list(await face.ready())
        status = "down" if problem is not None else "not ready" if problems else "ready"
        body = {"status": status, "detail": problem if problem is not None else "; ".join(problems) or None,
                "problems": problems, "warnings": face.warnings()}
        return JSONResponse(body, status_code=503 if problems else 200)

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(face.registry), media_type=CONTENT_TYPE_LATEST)

    return router
