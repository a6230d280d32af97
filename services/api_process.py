"""`faultline api`: the HTTP face of the production pipeline (CONTRACT §4).

Intake never calls a stage: alarms go to faultline.alarms, complaints and operator actions
to faultline.actions, TMF642 alarms to faultline.alarms.raw.tmf642, each only after the
broker acknowledged them; a body that cannot be used is answered 422 with the reason and
kept on faultline.deadletter. Reads come from the PostgreSQL read model the stages write,
a page at a time. Bodies are checked by services/http_guard.py (JSON content type, size,
time) and decoded with orjson, as the embedded app and every consumer of the topics do.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, select

from alarm_ingest.normalized import alarm_from_dict
from services.http_guard import PAGE_HEADERS, Limit, Offset, decode_json, harden, new_app, paged
from services.http_models import ACTION_BODY, ALARMS_BODY, COMPLAINT_BODY, TMF642_BODY
from services.processes import ProcessSettings, ops_router, prepare, readiness, serve_until_stopped
from shared.bus import ACTIONS, ALARMS, DEADLETTER
from shared.db.models import faults, work_orders
from shared.kafka import Producer, raw_alarms_topic
from shared.model import Rejected
from shared.wire import ACTION_KINDS, action_from_dict, complaint_from_dict, show

TMF642 = "/tmf-api/alarmManagement/v4/alarm"
TMF621 = "/tmf-api/troubleTicket/v4/troubleTicket"
MAX_ALARMS = 1000          # alarms in one POST /alarms list: one send_many, bounded


def _row(row) -> dict:
    d = {str(k): v for k, v in row._mapping.items()}       # plain str keys: orjson refuses str subclasses
    for name in ("fault_ids", "cc"):
        if isinstance(d.get(name), str):
            d[name] = orjson.loads(d[name])
    return d


def _usable(raw: bytes, kind: str) -> tuple[Any, str | None]:
    """The body (services/http_guard.decode_json), or what to keep of it and why it is refused."""
    body, reason = decode_json(raw)
    if reason is not None:
        return body, reason
    if kind == "alarm" and isinstance(body, list) and len(body) > MAX_ALARMS:
        return body, f"a list of {len(body)} alarms; at most {MAX_ALARMS} in one request"
    return body, None


async def _json_body(request: Request, kind: str, refuse) -> Any:
    body, reason = _usable(await request.body(), kind)
    if reason is not None:
        await refuse(kind, reason, body)          # raises: 422
    return body


def create_api(settings: ProcessSettings, engine, producer: Producer, registry: CollectorRegistry) -> FastAPI:
    app = new_app(title="faultline", description="Alarm correlation and fault dispatch (CONTRACT §4)")
    app.include_router(intake_router(producer, registry))
    app.include_router(read_router(engine))
    app.include_router(ops_router(lambda: True, lambda: readiness(engine, settings.kafka), registry))
    return harden(app, settings.http)


def intake_router(producer: Producer, registry: CollectorRegistry) -> APIRouter:
    intake = Counter("faultline_api_inputs", "Inputs received over HTTP, by kind and outcome",
                     ["kind", "outcome"], registry=registry)
    router = APIRouter()

    def message(topic: str, value: object, key: str | None) -> tuple:
        return (topic, orjson.dumps(value), key, None, int(time.time() * 1000))

    async def publish(topic: str, value: object, key: str | None) -> None:
        await producer.send_many([message(topic, value, key)])

    def dead_letter(kind: str, reason: str, body: Any) -> tuple:
        """A refused input, counted, as the message that keeps it on faultline.deadletter."""
        intake.labels(kind, "refused").inc()
        return message(DEADLETTER, {"reason": reason, "topic": "http", "value": body}, None)

    async def refuse(kind: str, reason: str, body: Any) -> None:
        await producer.send_many([dead_letter(kind, reason, body)])
        raise HTTPException(status_code=422, detail=reason)

    @router.post("/alarms", status_code=202, openapi_extra=ALARMS_BODY)
    async def post_alarms(request: Request):
        body = await _json_body(request, "alarm", refuse)
        items = body if isinstance(body, list) else [body]
        out, refused = [], []
        for i, item in enumerate(items):
            alarm = alarm_from_dict(item, f"alarms[{i}]" if isinstance(body, list) else "alarm")
            if isinstance(alarm, Rejected):
                if not isinstance(body, list):
                    await refuse("alarm", alarm.reason, item)
                refused.append(alarm.reason)
                out.append(dead_letter("alarm", alarm.reason, item))
                continue
            out.append(message(ALARMS, item, alarm.resource_id))
            intake.labels("alarm", "accepted").inc()
        await producer.send_many(out)                  # one round of acks for the whole list
        return {"accepted": len(out) - len(refused), "refused": refused}

    @router.post("/complaints", status_code=202, openapi_extra=COMPLAINT_BODY)
    async def post_complaint(request: Request):
        body = await _json_body(request, "complaint", refuse)
        complaint = complaint_from_dict(body)
        if isinstance(complaint, Rejected):
            await refuse("complaint", complaint.reason, body)
        await publish(ACTIONS, {"kind": "complaint", "complaint": body}, complaint.city)
        intake.labels("complaint", "accepted").inc()
        return {"accepted": 1}

    @router.post("/actions", status_code=202, openapi_extra=ACTION_BODY)
    async def post_action(request: Request):
        body = await _json_body(request, "action", refuse)
        kind = body.get("kind") if isinstance(body, dict) else None
        if kind not in ACTION_KINDS:
            await refuse("action", f"kind: {show(kind)} is not one of {', '.join(ACTION_KINDS)}", body)
        action = action_from_dict(kind, body)
        if isinstance(action, Rejected):
            await refuse(kind, action.reason, body)
        await publish(ACTIONS, {k: v for k, v in body.items() if k != "at"}, None)
        intake.labels(kind, "accepted").inc()
        return {"accepted": 1}

    @router.post(TMF642, status_code=202, openapi_extra=TMF642_BODY)
    async def post_tmf642(request: Request):
        body = await _json_body(request, "tmf642", refuse)
        await publish(raw_alarms_topic("tmf642"), body, None)
        intake.labels("tmf642", "accepted").inc()
        return {"accepted": 1}

    return router


def read_router(engine) -> APIRouter:
    router = APIRouter()

    async def page(query, offset: int, limit: int) -> tuple[list[dict], bool]:
        async with engine.connect() as conn:
            rows = [_row(r) for r in await conn.execute(query.offset(offset).limit(limit + 1))]
        return rows[:limit], len(rows) > limit

    @router.get("/faults", responses=PAGE_HEADERS)
    async def get_faults(city: str | None = None, severity: str | None = None, open: bool | None = None,
                         limit: Limit = 1000, offset: Offset = 0):
        """Faults, oldest first, a page at a time (X-Next-Offset while more match)."""
        query = select(faults).order_by(faults.c.opened_at, faults.c.fault_id)   # fault_id: stable pages
        if city:
            query = query.where(faults.c.city == city)
        if severity:
            query = query.where(faults.c.severity == severity)
        if open is not None:
            query = query.where(faults.c.ended_at.is_(None) if open else faults.c.ended_at.is_not(None))
        rows, more = await page(query, offset, limit)
        return paged(rows, offset, more)

    @router.get("/faults/{fault_id}")
    async def get_fault(fault_id: str):
        async with engine.connect() as conn:
            row = (await conn.execute(select(faults).where(faults.c.fault_id == fault_id))).first()
        if row is None:
            raise HTTPException(404, f"no fault {fault_id}")
        return _row(row)

    def orders(queue: str | None, status: str | None):
        query = select(work_orders).order_by(work_orders.c.created_at, work_orders.c.work_order_id)
        if queue:
            query = query.where(work_orders.c.queue == queue)
        if status:
            query = query.where(work_orders.c.status == status)
        return query

    @router.get("/workorders", responses=PAGE_HEADERS)
    async def get_work_orders(queue: str | None = None, status: str | None = None,
                              limit: Limit = 1000, offset: Offset = 0):
        """Work orders in creation order, a page at a time (X-Next-Offset while more match)."""
        rows, more = await page(orders(queue, status), offset, limit)
        return paged(rows, offset, more)

    @router.get(TMF621, responses=PAGE_HEADERS)
    async def get_trouble_tickets(status: str | None = None, limit: Limit = 1000, offset: Offset = 0):
        """Work orders as TMF621 TroubleTickets (status: the CL-2 lifecycle); TMF630 paging:
        `offset`/`limit`, X-Total-Count (all matches) and X-Result-Count (this page)."""
        query = orders(None, status)
        rows, more = await page(query, offset, limit)
        async with engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
        tickets = [{"id": o["work_order_id"], "name": o["title"], "status": o["status"],
                    "priority": o["priority"], "ticketType": o["rule"], "channel": {"name": o["queue"]},
                    "creationDate": o["created_at"], "relatedEntity": [{"id": f, "role": "fault"}
                                                                       for f in o["fault_ids"]]}
                   for o in rows]
        return paged(tickets, offset, more, **{"X-Total-Count": str(total)})

    return router


async def api(settings: ProcessSettings, stop: asyncio.Event) -> None:
    n = settings.kafka.partitions
    topics = (ALARMS, ACTIONS, DEADLETTER, raw_alarms_topic("tmf642"))
    engine = await prepare(settings, {t: n for t in topics})
    producer = Producer(settings.kafka)
    await producer.start(deadline_s=None)
    try:
        app = create_api(settings, engine, producer, CollectorRegistry())
        await serve_until_stopped(app, settings.http_port, stop)
    finally:
        await producer.stop()
        await engine.dispose()
