"""HTTP routes of the live service: intake, faults, work orders, decisions, operations.

Handlers read engine state directly; they run on the engine's event loop between its
steps, so each response is a consistent snapshot. Changes go through `Engine.submit`,
which answers with the outcome so a refusal comes back as 422 with its reason.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.engine import Outcome
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
from shared.wire import ACTION_KINDS

SOURCE = "http"


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _read_json(request: Request, rt: Runtime) -> tuple[object, Outcome | None]:
    raw = await request.body()
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as err:
        text = raw.decode("utf-8", "replace")
        return text, await rt.engine.submit(text, SOURCE, refuse=f"body is not valid JSON: {err}")


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
    body, refused = await _read_json(request, rt)
    if refused is not None:
        return _answer([refused], True)
    items = body if isinstance(body, list) else [body]
    outcomes = [await rt.engine.submit({"kind": "alarm", "alarm": a}, SOURCE) for a in items]
    return _answer(outcomes, not isinstance(body, list))


@intake.post("/complaints", status_code=202, response_model=IntakeResult, openapi_extra=COMPLAINT_BODY,
             responses={422: {"model": IntakeResult, "description": "the complaint was refused"}})
async def post_complaint(request: Request, rt: RuntimeDep) -> JSONResponse:
    """A complaint (CONTRACT §3); the wrapped form {"kind": "complaint", "complaint": {...}} also."""
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
    body, refused = await _read_json(request, rt)
    if refused is not None:
        return _answer([refused], True)
    if isinstance(body, dict) and body.get("kind") not in ACTION_KINDS:
        reason = f"kind: {body.get('kind')!r} is not one of {', '.join(ACTION_KINDS)}"
        return _answer([await rt.engine.submit(body, SOURCE, refuse=reason)], True)
    return _answer([await rt.engine.submit(body, SOURCE)], True)


# ---------------------------------------------------------------------- faults

faults = APIRouter(tags=["faults"])


@faults.get("/faults", response_model=list[FaultOut])
async def list_faults(rt: RuntimeDep, city: str | None = None, severity: str | None = None,
                      open: Annotated[bool | None, Query(description="only open faults")] = None,
                      ) -> list[FaultOut]:
    """Open faults and those ended within the recent window, oldest first."""
    pipe = rt.engine.pipeline
    horizon = (pipe.clock or 0.0) - rt.settings.recent_hours * 3600
    out = []
    for f in pipe.correlator.faults.values():
        if f.ended_at is not None and (open or f.ended_at < horizon):
            continue
        if open is False and f.ended_at is None:
            continue
        if (city and f.city != city) or (severity and f.severity != severity):
            continue
        out.append(FaultOut.of(f, pipe.dispatcher))
    return out


@faults.get("/faults/{fault_id}", response_model=FaultOut)
async def get_fault(fault_id: str, rt: RuntimeDep) -> FaultOut:
    pipe = rt.engine.pipeline
    f = pipe.correlator.faults.get(fault_id)
    if f is None:
        raise HTTPException(404, f"no fault {fault_id}")
    return FaultOut.of(f, pipe.dispatcher)


# ---------------------------------------------------------------------- work orders

workorders = APIRouter(tags=["work orders"])


@workorders.get("/workorders", response_model=list[WorkOrderOut])
async def list_workorders(rt: RuntimeDep, queue: str | None = None, status: str | None = None,
                          limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> list[WorkOrderOut]:
    out = []
    for wo in rt.engine.pipeline.dispatcher.orders.values():
        if (queue and wo.queue != queue) or (status and wo.status != status):
            continue
        out.append(WorkOrderOut.of(wo))
        if len(out) >= limit:
            break
    return out


@workorders.get("/workorders/{work_order_id}", response_model=WorkOrderOut)
async def get_workorder(work_order_id: str, rt: RuntimeDep) -> WorkOrderOut:
    wo = rt.engine.pipeline.dispatcher.orders.get(work_order_id)
    if wo is None:
        raise HTTPException(404, f"no work order {work_order_id}")
    return WorkOrderOut.of(wo)


# ---------------------------------------------------------------------- decisions

decisions = APIRouter(tags=["decisions"])


@decisions.get("/decisions", response_model=DecisionsPage)
async def list_decisions(rt: RuntimeDep, after_seq: Annotated[int, Query(ge=0)] = 0,
                         limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                         type: Annotated[list[str] | None, Query()] = None) -> DecisionsPage:
    """Stored output records (CONTRACT §3) after `after_seq`, in emission order."""
    rows = await rt.store.records_after(after_seq, limit, type)
    return DecisionsPage(decisions=[{"seq": r.seq, "record": r.body} for r in rows],
                         last_seq=rows[-1].seq if rows else after_seq)


# ---------------------------------------------------------------------- operations

ops = APIRouter(tags=["operations"])


@ops.get("/healthz", response_model=Status, responses={503: {"model": Status}})
async def healthz(rt: RuntimeDep) -> JSONResponse:
    if rt.engine.alive:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "down", "detail": "the engine task has stopped"}, status_code=503)


@ops.get("/readyz", response_model=Status, responses={503: {"model": Status}})
async def readyz(rt: RuntimeDep) -> JSONResponse:
    try:
        await rt.store.ping()
    except Exception as err:  # noqa: BLE001 - any failure means not ready
        return JSONResponse({"status": "unavailable", "detail": type(err).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})


@ops.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    return Response(generate_latest(rt.registry), media_type=CONTENT_TYPE_LATEST)


ROUTERS = (intake, faults, workorders, decisions, ops)
