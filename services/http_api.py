"""HTTP routes of the live service: intake, faults, work orders, decisions, operations.

Handlers read engine state directly; they run on the engine's event loop between its
steps, so each response is a consistent snapshot. A list is paged (`limit`, `offset`) and
built without an await, as plain dicts encoded by orjson, and reads give way to intake
(`IntakeFirst`). What one read costs: building its page (at most `limit` items), plus a
walk over every item before the page and every item a filter skips — `offset` is counted,
not jumped, and `/faults` walks `correlator.faults`, which keeps every fault the engine
has made. That walk costs ~55-75 ms of the engine's loop per million faults passed over, so a
deep `offset` or a rare filter over a long-running service's faults is the costly read.
Changes go through `Engine.submit`, which answers with the outcome so a refusal comes back
as 422 with its reason. Bodies reach these handlers through services/http_guard.py: JSON by
content type, within the size limit, whole; at most `max_decoded_bodies` are decoded and
held at once (`IntakeFirst.intake`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.engine import Outcome
from services.http_guard import (
    MAX_INT64,
    PAGE_HEADERS,
    Limit,
    Offset,
    action_refusal,
    alarm_list_refusal,
    decode_json,
    paged,
)
from services.http_models import (
    ACTION_BODY,
    ALARMS_BODY,
    COMPLAINT_BODY,
    DecisionsPage,
    FaultOut,
    IntakeResult,
    Refused,
    Status,
    WorkOrderOut,
)
from services.runtime import Runtime

SOURCE = "http"
T = TypeVar("T")


def _page(items: Iterable[T], keep: Callable[[T], bool], offset: int, limit: int) -> tuple[list[T], bool]:
    """At most `limit` kept items after the first `offset` kept ones, and whether more follow."""
    out: list[T] = []
    for x in items:
        if not keep(x):
            continue
        if offset:
            offset -= 1
            continue
        if len(out) == limit:
            return out, True
        out.append(x)
    return out, False


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _read_json(request: Request, rt: Runtime) -> tuple[object, Outcome | None]:
    body, reason = decode_json(await request.body())
    if reason is None:
        return body, None
    return body, await rt.engine.submit(body, SOURCE, refuse=reason)


def _answer(outcomes: list[Outcome], single: bool) -> JSONResponse:
    reasons = [Refused(index=i, reason=o.reason) for i, o in enumerate(outcomes) if o.reason is not None]
    result = IntakeResult(accepted=len(outcomes) - len(reasons), rejected=len(reasons), reasons=reasons,
                          records=sum(o.records for o in outcomes))
    status = 422 if single and reasons else 202
    return JSONResponse(result.model_dump(), status_code=status)


# ---------------------------------------------------------------------- intake

intake = APIRouter(tags=["intake"])


@intake.post("/alarms", status_code=202, response_model=IntakeResult, openapi_extra=ALARMS_BODY,
             responses={422: {"model": IntakeResult, "description": "the alarm was refused"}})
async def post_alarms(request: Request, rt: RuntimeDep) -> JSONResponse:
    """One normalized alarm (CONTRACT §2) or a list; a list is answered 202 with per-item reasons."""
    async with rt.gate.intake():
        return await _post_alarms(request, rt)


async def _post_alarms(request: Request, rt: Runtime) -> JSONResponse:
    raw = await request.body()
    body, reason = decode_json(raw)
    if reason is None and (reason := alarm_list_refusal(body)) is not None:
        # Kept as the text it came as: the decoded list (up to ~23 MiB of objects for 1 MiB of
        # `{}`s) is dropped here, not queued for the engine and stored.
        body = raw.decode("utf-8", "replace")
    del raw
    if reason is not None:
        return _answer([await rt.engine.submit(body, SOURCE, refuse=reason)], True)
    items = body if isinstance(body, list) else [body]
    outcomes = [await rt.engine.submit({"kind": "alarm", "alarm": a}, SOURCE) for a in items]
    return _answer(outcomes, not isinstance(body, list))


@intake.post("/complaints", status_code=202, response_model=IntakeResult, openapi_extra=COMPLAINT_BODY,
             responses={422: {"model": IntakeResult, "description": "the complaint was refused"}})
async def post_complaint(request: Request, rt: RuntimeDep) -> JSONResponse:
    """A complaint (CONTRACT §3); the wrapped form {"kind": "complaint", "complaint": {...}} also."""
    async with rt.gate.intake():
        return await _post_complaint(request, rt)


async def _post_complaint(request: Request, rt: Runtime) -> JSONResponse:
    body, refused = await _read_json(request, rt)
    if refused is not None:
        return _answer([refused], True)
    if isinstance(body, dict) and body.get("kind") == "complaint" and "complaint" in body:
        body = body["complaint"]
    return _answer([await rt.engine.submit({"kind": "complaint", "complaint": body}, SOURCE)], True)


@intake.post("/actions", status_code=202, response_model=IntakeResult, openapi_extra=ACTION_BODY,
             responses={422: {"model": IntakeResult, "description": "the action cannot apply (CL-4)"}})
async def post_action(request: Request, rt: RuntimeDep) -> JSONResponse:
    """An operator action: confirm, attribution, ack, resolve or escalate (CONTRACT §3)."""
    async with rt.gate.intake():
        return await _post_action(request, rt)


async def _post_action(request: Request, rt: Runtime) -> JSONResponse:
    body, refused = await _read_json(request, rt)
    if refused is not None:
        return _answer([refused], True)
    reason = action_refusal(body)
    if reason is not None:
        kept = body if body is not None else "null"
        return _answer([await rt.engine.submit(kept, SOURCE, refuse=reason)], True)
    return _answer([await rt.engine.submit(body, SOURCE)], True)


# ---------------------------------------------------------------------- faults

faults = APIRouter(tags=["faults"])


@faults.get("/faults", response_model=list[FaultOut], responses=PAGE_HEADERS)
async def list_faults(rt: RuntimeDep, city: str | None = None, severity: str | None = None,
                      open: Annotated[bool | None, Query(description="only open faults")] = None,
                      limit: Limit = 1000, offset: Offset = 0) -> Response:
    """Open faults and those ended within the recent window, oldest first, a page at a time."""
    await rt.gate.read()
    pipe = rt.engine.pipeline
    horizon = (pipe.clock or 0.0) - rt.settings.recent_hours * 3600
    source = pipe.correlator.open_faults if open else pipe.correlator.faults

    def keep(f) -> bool:
        if f.ended_at is not None and (open or f.ended_at < horizon):
            return False
        if open is False and f.ended_at is None:
            return False
        return not ((city and f.city != city) or (severity and f.severity != severity))

    page, more = _page(source.values(), keep, offset, limit)
    return paged([FaultOut.row(f, pipe.dispatcher) for f in page], offset, more)


@faults.get("/faults/{fault_id}", response_model=FaultOut)
async def get_fault(fault_id: str, rt: RuntimeDep) -> FaultOut:
    pipe = rt.engine.pipeline
    f = pipe.correlator.faults.get(fault_id)
    if f is None:
        raise HTTPException(404, f"no fault {fault_id}")
    return FaultOut.of(f, pipe.dispatcher)


# ---------------------------------------------------------------------- work orders

workorders = APIRouter(tags=["work orders"])


@workorders.get("/workorders", response_model=list[WorkOrderOut], responses=PAGE_HEADERS)
async def list_workorders(rt: RuntimeDep, queue: str | None = None, status: str | None = None,
                          limit: Limit = 1000, offset: Offset = 0) -> Response:
    """Work orders in creation order, a page at a time."""
    await rt.gate.read()

    def keep(wo) -> bool:
        return not ((queue and wo.queue != queue) or (status and wo.status != status))

    page, more = _page(rt.engine.pipeline.dispatcher.orders.values(), keep, offset, limit)
    return paged([WorkOrderOut.row(wo) for wo in page], offset, more)


@workorders.get("/workorders/{work_order_id}", response_model=WorkOrderOut)
async def get_workorder(work_order_id: str, rt: RuntimeDep) -> WorkOrderOut:
    wo = rt.engine.pipeline.dispatcher.orders.get(work_order_id)
    if wo is None:
        raise HTTPException(404, f"no work order {work_order_id}")
    return WorkOrderOut.of(wo)


# ---------------------------------------------------------------------- decisions

decisions = APIRouter(tags=["decisions"])


@decisions.get("/decisions", response_model=DecisionsPage)
async def list_decisions(rt: RuntimeDep, after_seq: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
                         limit: Limit = 500,
                         type: Annotated[list[str] | None, Query()] = None) -> DecisionsPage:
    """Stored output records (CONTRACT §3) after `after_seq`, in emission order."""
    await rt.gate.read()
    rows = await rt.store.records_after(after_seq, limit, type)
    return DecisionsPage(decisions=[{"seq": r.seq, "record": r.body} for r in rows],
                         last_seq=rows[-1].seq if rows else after_seq)


# ---------------------------------------------------------------------- operations

ops = APIRouter(tags=["operations"])


@ops.get("/healthz", response_model=Status, responses={503: {"model": Status}})
async def healthz(rt: RuntimeDep) -> JSONResponse:
    if rt.engine.alive:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "down", "detail": rt.engine.problem}, status_code=503)


@ops.get("/readyz", response_model=Status, responses={503: {"model": Status}})
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Ready: the engine task runs and the store answers. `warnings` never make it unready."""
    warnings = rt.warnings()
    if not rt.engine.alive:
        return JSONResponse({"status": "down", "detail": rt.engine.problem,
                             "warnings": warnings}, status_code=503)
    try:
        await rt.store.ping()
    except Exception as err:  # noqa: BLE001 - any failure means not ready
        return JSONResponse({"status": "unavailable", "detail": type(err).__name__, "warnings": warnings},
                            status_code=503)
    return JSONResponse({"status": "ok", "warnings": warnings})


@ops.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    return Response(generate_latest(rt.registry), media_type=CONTENT_TYPE_LATEST)


ROUTERS = (intake, faults, workorders, decisions, ops)
