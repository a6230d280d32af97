"""`faultline api`: the HTTP face of the production pipeline (CONTRACT §4).

Intake never calls a stage: alarms go to faultline.alarms, complaints and operator actions
to faultline.actions, TMF642 alarms to faultline.alarms.raw.tmf642, each only after the
broker acknowledged them; a body that cannot be used is answered 422 with the reason and
kept on faultline.deadletter. Reads come from the PostgreSQL read model the stages write.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, FastAPI, HTTPException
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select

from alarm_ingest.normalized import alarm_from_dict
from services.processes import ProcessSettings, ops_router, prepare, readiness, serve_until_stopped
from shared.bus import ACTIONS, ALARMS, DEADLETTER
from shared.db.models import faults, work_orders
from shared.kafka import Producer, raw_alarms_topic
from shared.model import Rejected
from shared.wire import ACTION_KINDS, action_from_dict, complaint_from_dict

JsonBody = Annotated[Any, Body()]
TMF642 = "/tmf-api/alarmManagement/v4/alarm"
TMF621 = "/tmf-api/troubleTicket/v4/troubleTicket"


def _row(row) -> dict:
    d = dict(row._mapping)
    for name in ("fault_ids", "cc"):
        if isinstance(d.get(name), str):
            d[name] = orjson.loads(d[name])
    return d


def create_api(settings: ProcessSettings, engine, producer: Producer, registry: CollectorRegistry) -> FastAPI:
    app = FastAPI(title="faultline", description="Alarm correlation and fault dispatch (CONTRACT §4)")
    app.include_router(intake_router(producer, registry))
    app.include_router(read_router(engine))
    app.include_router(ops_router(lambda: True, lambda: readiness(engine, settings.kafka), registry))
    return app


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

    @router.post("/alarms", status_code=202)
    async def post_alarms(body: JsonBody):
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

    @router.post("/complaints", status_code=202)
    async def post_complaint(body: JsonBody):
        complaint = complaint_from_dict(body)
        if isinstance(complaint, Rejected):
            await refuse("complaint", complaint.reason, body)
        await publish(ACTIONS, {"kind": "complaint", "complaint": body}, complaint.city)
        intake.labels("complaint", "accepted").inc()
        return {"accepted": 1}

    @router.post("/actions", status_code=202)
    async def post_action(body: JsonBody):
        kind = body.get("kind") if isinstance(body, dict) else None
        if kind not in ACTION_KINDS:
            await refuse("action", f"kind: {kind!r} is not one of {', '.join(ACTION_KINDS)}", body)
        action = action_from_dict(kind, body)
        if isinstance(action, Rejected):
            await refuse(kind, action.reason, body)
        await publish(ACTIONS, {k: v for k, v in body.items() if k != "at"}, None)
        intake.labels(kind, "accepted").inc()
        return {"accepted": 1}

    @router.post(TMF642, status_code=202)
    async def post_tmf642(body: JsonBody):
        await publish(raw_alarms_topic("tmf642"), body, None)
        intake.labels("tmf642", "accepted").inc()
        return {"accepted": 1}

    return router


def read_router(engine) -> APIRouter:
    router = APIRouter()

    @router.get("/faults")
    async def get_faults(city: str | None = None, severity: str | None = None, open: bool | None = None):
        query = select(faults).order_by(faults.c.opened_at)
        if city:
            query = query.where(faults.c.city == city)
        if severity:
            query = query.where(faults.c.severity == severity)
        if open is not None:
            query = query.where(faults.c.ended_at.is_(None) if open else faults.c.ended_at.is_not(None))
        async with engine.connect() as conn:
            return [_row(r) for r in await conn.execute(query.limit(1000))]

    @router.get("/faults/{fault_id}")
    async def get_fault(fault_id: str):
        async with engine.connect() as conn:
            row = (await conn.execute(select(faults).where(faults.c.fault_id == fault_id))).first()
        if row is None:
            raise HTTPException(404, f"no fault {fault_id}")
        return _row(row)

    async def _orders(queue: str | None, status: str | None) -> list[dict]:
        query = select(work_orders).order_by(work_orders.c.created_at)
        if queue:
            query = query.where(work_orders.c.queue == queue)
        if status:
            query = query.where(work_orders.c.status == status)
        async with engine.connect() as conn:
            return [_row(r) for r in await conn.execute(query.limit(1000))]

    @router.get("/workorders")
    async def get_work_orders(queue: str | None = None, status: str | None = None):
        return await _orders(queue, status)

    @router.get(TMF621)
    async def get_trouble_tickets(status: str | None = None):
        """Work orders as TMF621 TroubleTickets (status: the CL-2 lifecycle)."""
        return [{"id": o["work_order_id"], "name": o["title"], "status": o["status"],
                 "priority": o["priority"], "ticketType": o["rule"], "channel": {"name": o["queue"]},
                 "creationDate": o["created_at"], "relatedEntity": [{"id": f, "role": "fault"}
                                                                    for f in o["fault_ids"]]}
                for o in await _orders(None, status)]

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
