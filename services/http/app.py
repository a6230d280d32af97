"""The HTTP API of faultline (CONTRACT §4), one app for both ways it runs: `faultline api`
next to the Kafka processes, and `faultline run` with every stage in one process. A mode
gives a `Face`: the producer intake publishes with (the transport port), the database the
stages keep (the read model, the shard logs, the outbox, the refusals), its metrics
registry, its health, readiness and warnings, its HTTP limits, its clock and, when it has
loaded one, the inventory. This is the one module that builds FastAPI apps: `build_app(face)`,
and `build_ops_app(ops)`, the port of a process that serves only /healthz, /readyz and
/metrics (correlate, dispatch, ingest). Beside it: face.py (what a mode gives), intake.py
(the intake routes and outcomes), ops.py (health, readiness, metrics), reads.py (the SQL of
the reads), models.py, examples.py, guard.py, auth.py; the TMF APIs: tickets.py (TMF621),
alarms642.py (TMF642), tmf.py (what they share), hub_routes.py (services/hub.py delivers);
inventory_routes.py (services/inventory_store.py); fault_detail.py (and dispatcher/report.py).
Their /docs and /redoc load every asset from the
fastapi-offline package: monitoring rooms sit on isolated networks.

Intake never calls a stage. An accepted input is published — alarms to faultline.alarms
(keyed by resource), complaints and operator actions (§3 objects, without `at`) to
faultline.actions, TMF642 alarms as they came to faultline.alarms.raw.tmf642 (alarms642.py) — stamped
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

import logging
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import InterfaceError, OperationalError

from dispatcher.report import report_html, report_markdown
from services.access import ADMIN, READ, AuditTrail, Principal
from services.http import examples
from services.http.alarms642 import alarm_routes
from services.http.auth import AUTH_ANSWERS, Auth, check
from services.http.face import TMF621_BASE, Face
from services.http.fault_detail import fault_detail
from services.http.guard import (
    MAX_INT64,
    PAGE_HEADERS,
    HttpLimits,
    Limit,
    Offset,
    harden,
    paged,
)
from services.http.hub_routes import hub_routes
from services.http.intake import Intake, _database_down, _Refusal, _refused, intake_routes
from services.http.inventory_routes import Served, inventory_routes
from services.http.models import (
    AuditPage,
    DecisionsPage,
    FaultDetail,
    FaultOut,
    Problem,
    WorkOrderOut,
)
from services.http.ops import Ops, ops_routes
from services.http.reads import (
    decisions_after,
    fault_one,
    fault_page,
    order_one,
    order_page,
)
from services.http.tickets import ticket_routes
from services.http.tmf import install_tmf_errors
from services.http.wall import wall_routes
from services.hub import Hub

log = logging.getLogger("faultline.http")


def _new_app(*, docs: bool = True, **kwargs: Any) -> FastAPI:
    """A FastAPI app; with `docs`, /docs and /redoc are served without any CDN."""
    if not docs:
        return FastAPI(docs_url=None, redoc_url=None, **kwargs)
    # validatorUrl None: Swagger UI would otherwise fetch a badge from validator.swagger.io.
    return FastAPIOffline(swagger_ui_parameters={"validatorUrl": None}, **kwargs)


def build_app(face: Face) -> FastAPI:
    app = _new_app(title="faultline", description="Alarm correlation and fault dispatch (CONTRACT §4)")
    auth = Auth(face.db)
    io = Intake(face)
    app.include_router(intake_routes(face, auth, io))
    app.include_router(read_routes(face, auth))
    # The TMF hub, at the root (POST /hub) and at the TMF621 base path; its delivery loop is
    # started by the command that serves the app (app.state.hub.run).
    hub = app.state.hub = Hub(face.db, registry=face.registry)
    app.include_router(ticket_routes(face, io, auth, hub))
    app.include_router(alarm_routes(io, auth))
    app.include_router(inventory_routes(face, auth, Served(face.inventory, face.inventory_version), io.trail))
    app.include_router(hub_routes(hub, auth))
    app.include_router(hub_routes(hub, auth), prefix=TMF621_BASE)
    app.include_router(wall_routes(face, auth))
    install_tmf_errors(app)
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


# ---------------------------------------------------------------------- reads

def _one(body: dict) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def _scoped(who: Principal, city: str | None, what: str) -> str | None:
    """The city a list is limited to: a city operator's own (403 when it asks for another)."""
    if who.city is None:
        return city
    if city is not None and city != who.city:
        check(who, READ, city, what)
    return who.city


def read_routes(face: Face, auth: Auth) -> APIRouter:
    db = face.db
    names = {c.customer_id: c.name for c in face.inventory.customers.values()} if face.inventory else None
    router = APIRouter(responses=AUTH_ANSWERS)
    read, admin = Depends(auth.needs(READ)), Depends(auth.needs(ADMIN))
    trail = AuditTrail(db)

    @router.get("/faults", tags=["faults"], response_model=list[FaultOut], responses=PAGE_HEADERS)
    async def list_faults(city: str | None = None, severity: str | None = None,
                          open: Annotated[bool | None, Query(description="only open (true) or ended "
                                                                         "(false) faults")] = None,
                          limit: Limit = 1000, offset: Offset = 0, who: Principal = read) -> Response:
        """Faults by opening time, a page at a time (X-Next-Offset while more match); a city
        operator's token sees its city's only."""
        city = _scoped(who, city, f"the faults of {city}")
        async with db.connect() as conn:
            rows, more = await fault_page(conn, city, severity, open, offset, limit, names)
        return paged(rows, offset, more)

    @router.get("/faults/{fault_id}", tags=["faults"], response_model=FaultOut,
                responses={404: {"model": Problem, "description": "no fault of that id"}})
    async def get_fault(fault_id: str, who: Principal = read) -> Response:
        async with db.connect() as conn:
            body = await fault_one(conn, fault_id, names)
        if body is None:
            raise HTTPException(404, f"no fault {fault_id}")
        check(who, READ, body.get("city") or "the province", f"fault {fault_id}")
        return _one(body)

    async def detail_of(fault_id: str, who: Principal) -> dict:
        async with db.connect() as conn:
            detail = await fault_detail(conn, fault_id, face.inventory)
        if detail is None:
            raise HTTPException(404, f"no fault {fault_id}")
        check(who, READ, detail["fault"].get("city") or "the province", f"fault {fault_id}")
        return detail

    @router.get("/faults/{fault_id}/detail", tags=["faults"], response_model=FaultDetail,
                responses={404: {"model": Problem, "description": "no fault of that id"}})
    async def get_fault_detail(fault_id: str, who: Principal = read) -> Response:
        """Everything kept of a fault (RULES.md CL-3): the fault, its customer and circuit, the
        alarms on its resources during it, its complaints, work orders, escalations,
        notifications, pending timers and incident."""
        return _one(await detail_of(fault_id, who))

    @router.get("/faults/{fault_id}/report", tags=["faults"],
                responses={200: {"description": "the report", "content": {
                    "text/markdown": {"schema": {"type": "string"}, "example": examples.REPORT_MARKDOWN},
                    "text/html": {"schema": {"type": "string"}}}},
                    404: {"model": Problem, "description": "no fault of that id"}})
    async def get_fault_report(fault_id: str,
                               format: Annotated[Literal["markdown", "html"], Query()] = "markdown",
                               who: Principal = read) -> Response:
        """The 48-hour technical fault report (技术版故障处理报告, TM-7) of a serious fault, from
        what CL-3 keeps: times, root cause, affected circuits and customers, work orders and
        their handling, escalations and notices; Markdown or a self-contained HTML page."""
        detail = await detail_of(fault_id, who)
        if format == "html":
            return Response(report_html(detail), media_type="text/html; charset=utf-8")
        return Response(report_markdown(detail), media_type="text/markdown; charset=utf-8")

    @router.get("/workorders", tags=["work orders"], response_model=list[WorkOrderOut],
                responses=PAGE_HEADERS)
    async def list_work_orders(queue: str | None = None, status: str | None = None,
                               limit: Limit = 1000, offset: Offset = 0, who: Principal = read) -> Response:
        """Work orders in creation order, a page at a time (X-Next-Offset while more match); a
        city operator's token sees its city's queues only."""
        city = _scoped(who, _queue_city(queue), f"queue {queue}")
        async with db.connect() as conn:
            rows, more = await order_page(conn, queue, status, offset, limit, city)
        return paged(rows, offset, more)

    @router.get("/workorders/{work_order_id}", tags=["work orders"], response_model=WorkOrderOut,
                responses={404: {"model": Problem, "description": "no work order of that id"}})
    async def get_work_order(work_order_id: str, who: Principal = read) -> Response:
        async with db.connect() as conn:
            body = await order_one(conn, work_order_id)
        if body is None:
            raise HTTPException(404, f"no work order {work_order_id}")
        check(who, READ, _queue_city(body.get("queue")) or "the province", f"work order {work_order_id}")
        return _one(body)

    @router.get("/decisions", tags=["decisions"], response_model=DecisionsPage)
    async def list_decisions(after_seq: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
                             limit: Limit = 500,
                             type: Annotated[list[str] | None, Query()] = None,
                             who: Principal = read) -> Response:
        """Stored output records (CONTRACT §3) after `after_seq`, in the order they were kept:
        every city's, so not for a city operator's token."""
        if who.city is not None:
            raise HTTPException(403, f"role {who.role} may not read every city's decisions "
                                     f"(this token is {who.city}'s: read /faults and /workorders)")
        async with db.connect() as conn:
            rows = await decisions_after(conn, after_seq, limit, type)
        return _one({"decisions": rows, "last_seq": rows[-1]["seq"] if rows else after_seq})

    @router.get("/audit", tags=["security"], response_model=AuditPage)
    async def list_audit(after_id: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0, limit: Limit = 500,
                         who: Principal = admin) -> Response:
        """The audit trail (留痕), admin only: every accepted change made through the API or the
        token command — who (token id, name, role, city), what, when (Unix seconds), and the
        ids of the inputs it published — oldest first, after `after_id`."""
        rows = await trail.after(after_id, limit)
        return _one({"changes": rows, "last_id": rows[-1]["id"] if rows else after_id})

    return router


def _queue_city(queue: object) -> str | None:
    """The city of a city queue (`city.GZ.monitoring` → GZ); None for a provincial one."""
    if type(queue) is str and queue.startswith("city."):
        return queue.split(".")[1] or None
    return None


def build_ops_app(ops: Ops, limits: HttpLimits) -> FastAPI:
    """A process's own port (correlate, dispatch, ingest): nothing but the ops routes, behind
    the same guard as the API."""
    app = _new_app(docs=False, title="faultline process")
    app.include_router(ops_routes(ops))
    return harden(app, limits)
