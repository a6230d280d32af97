"""`faultline api`: the HTTP face of the production pipeline (CONTRACT §4).

Intake never calls a stage: alarms go to faultline.alarms, complaints and operator actions
to faultline.actions, TMF642 alarms to faultline.alarms.raw.tmf642, each only after the
broker acknowledged them; a body that cannot be used is answered 422 with the reason and
kept on faultline.deadletter (cut to fit a message, services/deadletter.py); an accepted
value that could not fit a Kafka message is answered 413, nothing sent. At most
`max_decoded_bodies` bodies are decoded and held at once (`IntakeSlots`). Reads come from
the PostgreSQL read model the stages write, a page at a time. Bodies are checked by
services/http_guard.py (JSON content type, size, time) and decoded with orjson, as the
embedded app and every consumer of the topics do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, select

from alarm_ingest.normalized import alarm_from_dict
from services.deadletter import MAX_VALUE, fits
from services.deadletter import dead_letter as letter
from services.http_guard import (
    PAGE_HEADERS,
    HttpLimits,
    IntakeSlots,
    Limit,
    Offset,
    action_refusal,
    alarm_list_refusal,
    decode_json,
    harden,
    new_app,
    paged,
)
from services.http_models import ACTION_BODY, ALARMS_BODY, COMPLAINT_BODY, TMF642_BODY
from services.process_kit import ProcessSettings, ops_router, prepare, readiness, serve_until_stopped
from shared.db.models import faults, work_orders
from shared.kafka import Producer
from shared.model import Rejected
from shared.topics import ACTIONS, ALARMS, DEADLETTER, raw_alarms_topic
from shared.wire import action_from_dict, complaint_from_dict

TMF642 = "/tmf-api/alarmManagement/v4/alarm"
TMF621 = "/tmf-api/troubleTicket/v4/troubleTicket"


def _row(row) -> dict:
    d = {str(k): v for k, v in row._mapping.items()}       # plain str keys: orjson refuses str subclasses
    for name in ("fault_ids", "cc"):
        if isinstance(d.get(name), str):
            d[name] = orjson.loads(d[name])
    return d


def create_api(settings: ProcessSettings, engine, producer: Producer, registry: CollectorRegistry) -> FastAPI:
    app = new_app(title="faultline", description="Alarm correlation and fault dispatch (CONTRACT §4)")
    app.include_router(intake_router(producer, registry, settings.http))
    app.include_router(read_router(engine))
    app.include_router(ops_router(lambda: True, lambda: readiness(engine, settings.kafka), registry))
    return harden(app, settings.http)


class _TooLarge(HTTPException):
    def __init__(self, what: str, size: int) -> None:
        super().__init__(413, f"{what} is {size} bytes once encoded; at most {MAX_VALUE} fit a message")


class _Intake:
    """What the intake endpoints share: the producer, the counter, and how a body becomes
    records (accepted, or refused and dead-lettered)."""

    def __init__(self, producer: Producer, registry: CollectorRegistry) -> None:
        self.producer = producer
        self.counted = Counter("faultline_api_inputs", "Inputs received over HTTP, by kind and outcome",
                               ["kind", "outcome"], registry=registry)

    def message(self, kind: str, topic: str, value: object, key: str | None) -> tuple:
        """An accepted value as the record to send; 413 (nothing sent) if it could never be sent:
        Kafka refuses a record over 1 MiB, and a smaller body can encode larger."""
        encoded = orjson.dumps(value)
        if not fits(encoded):
            self.counted.labels(kind, "too_large").inc()
            raise _TooLarge(kind, len(encoded))
        return (topic, encoded, key, None, int(time.time() * 1000))

    async def publish(self, kind: str, topic: str, value: object, key: str | None) -> None:
        await self.producer.send_many([self.message(kind, topic, value, key)])
        self.counted.labels(kind, "accepted").inc()

    def dead_letter(self, kind: str, reason: str, body: Any) -> tuple:
        """A refused input, counted, as the message that keeps it on faultline.deadletter: the
        body cut to fit (services/deadletter.py), whatever its size."""
        self.counted.labels(kind, "refused").inc()
        return (DEADLETTER, letter(reason, {"topic": "http"}, body), None, None, int(time.time() * 1000))

    async def refuse(self, kind: str, reason: str, body: Any) -> NoReturn:
        await self.producer.send_many([self.dead_letter(kind, reason, body)])
        raise HTTPException(status_code=422, detail=reason)

    async def json_body(self, request: Request, kind: str) -> Any:
        """The body (services/http_guard.decode_json), or 422 once it is dead-lettered; an alarm
        list over the cap is kept as the text it came as, its decoded items dropped at once."""
        raw = await request.body()
        body, reason = decode_json(raw)
        if reason is None and kind == "alarm" and (reason := alarm_list_refusal(body)) is not None:
            body = raw.decode("utf-8", "replace")
        if reason is not None:
            await self.refuse(kind, reason, body)
        return body


def intake_router(producer: Producer, registry: CollectorRegistry, limits: HttpLimits) -> APIRouter:
    io = _Intake(producer, registry)
    slots = IntakeSlots(limits.max_decoded_bodies)

    async def one_slot() -> AsyncIterator[None]:
        async with slots.slot():          # held while the handler decodes and holds the body
            yield
    router = APIRouter(dependencies=[Depends(one_slot)])

    @router.post("/alarms", status_code=202, openapi_extra=ALARMS_BODY)
    async def post_alarms(request: Request):
        body = await io.json_body(request, "alarm")
        items = body if isinstance(body, list) else [body]
        out, refused = [], []
        for i, item in enumerate(items):
            alarm = alarm_from_dict(item, f"alarms[{i}]" if isinstance(body, list) else "alarm")
            if isinstance(alarm, Rejected):
                if not isinstance(body, list):
                    await io.refuse("alarm", alarm.reason, item)
                refused.append(alarm.reason)
                out.append(io.dead_letter("alarm", alarm.reason, item))
                continue
            out.append(io.message("alarm", ALARMS, item, alarm.resource_id))
        await producer.send_many(out)                  # one round of acks for the whole list
        io.counted.labels("alarm", "accepted").inc(len(out) - len(refused))
        return {"accepted": len(out) - len(refused), "refused": refused}

    @router.post("/complaints", status_code=202, openapi_extra=COMPLAINT_BODY)
    async def post_complaint(request: Request):
        body = await io.json_body(request, "complaint")
        complaint = complaint_from_dict(body)
        if isinstance(complaint, Rejected):
            await io.refuse("complaint", complaint.reason, body)
        await io.publish("complaint", ACTIONS, {"kind": "complaint", "complaint": body}, complaint.city)
        return {"accepted": 1}

    @router.post("/actions", status_code=202, openapi_extra=ACTION_BODY)
    async def post_action(request: Request):
        body = await io.json_body(request, "action")
        reason = action_refusal(body)
        if reason is not None:
            await io.refuse("action", reason, body)
        kind = body["kind"]
        action = action_from_dict(kind, body)
        if isinstance(action, Rejected):
            await io.refuse(kind, action.reason, body)
        await io.publish(kind, ACTIONS, {k: v for k, v in body.items() if k != "at"}, None)
        return {"accepted": 1}

    @router.post(TMF642, status_code=202, openapi_extra=TMF642_BODY)
    async def post_tmf642(request: Request):
        body = await io.json_body(request, "tmf642")
        await io.publish("tmf642", raw_alarms_topic("tmf642"), body, None)
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
        await serve_until_stopped(app, settings.http_port, stop, settings.http)
    finally:
        await producer.stop()
        await engine.dispose()
