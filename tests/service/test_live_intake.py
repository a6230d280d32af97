"""Intake over HTTP: accepted inputs become stored decisions; refused ones are kept and dead-lettered."""

from __future__ import annotations

import asyncio

import orjson

from service.support import FIBRE_CUT, T0, FakeClock, alarm, all_decisions, live_service
from shared.bus import InMemoryBus
from shared.topics import ACTIONS, ALARMS, DEADLETTER, DECISIONS, workorders_topic


async def test_alarm_intake_stores_and_publishes_decisions(settings):
    bus = InMemoryBus()
    decisions = bus.subscribe(DECISIONS)
    specialist = bus.subscribe(workorders_topic("prov.specialist.transmission"))
    async with live_service(settings, FakeClock(T0 + 5), bus) as svc:
        resp = await svc.client.post("/alarms", json=FIBRE_CUT)
        assert resp.status_code == 202
        assert resp.json()["accepted"] == 3 and resp.json()["rejected"] == 0
        stored = await all_decisions(svc.client)
    types = [d["record"]["type"] for d in stored]
    assert types.count("fault.opened") == 4         # both NH lines, the diamond line, a city line
    opened = {d["record"]["circuit_id"] for d in stored if d["record"]["type"] == "fault.opened"}
    assert {"GZ-INT-0001", "GZ-INT-0002"} <= opened
    assert [orjson.loads(m.value) for m in decisions.pending()] == [d["record"] for d in stored]
    orders = [orjson.loads(m.value) for m in specialist.pending()]
    assert orders[0]["type"] == "work_order.created" and orders[0]["queue"] == "prov.specialist.transmission"


async def test_faults_and_workorders_are_queryable_with_filters(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        faults = (await svc.client.get("/faults", params={"city": "GZ", "open": "true"})).json()
        assert [f["fault_id"] for f in faults] == ["F-000001", "F-000002", "F-000003", "F-000004"]
        assert faults[0]["customer_name"] == "南方航空集团公司"
        assert faults[0]["root_resource"] == "GZ-OTN-A:1-3-1"
        assert (await svc.client.get("/faults", params={"city": "FS"})).json() == []
        assert (await svc.client.get("/faults", params={"severity": "serious"})).json() == []
        one = await svc.client.get("/faults/F-000001")
        assert one.status_code == 200 and one.json()["work_orders"]
        assert (await svc.client.get("/faults/F-999999")).status_code == 404
        queue = (await svc.client.get("/workorders", params={"queue": "prov.specialist.transmission"})).json()
        assert len(queue) == 1 and queue[0]["fault_ids"] == ["F-000001", "F-000002", "F-000003"]
        assert queue[0]["title"].startswith("【集团客户一般故障】")
        wo = await svc.client.get(f"/workorders/{queue[0]['work_order_id']}")
        assert wo.json()["status"] == "acknowledged"
        assert (await svc.client.get("/workorders/W-999999")).status_code == 404


async def test_refused_alarm_is_422_stored_in_rejected_and_dead_lettered(settings):
    bus = InMemoryBus()
    deadletter = bus.subscribe(DEADLETTER)
    bad = alarm("GZ-OTN-A:1-3-1", "1", cause="LOS") | {"severity": "loud"}
    async with live_service(settings, FakeClock(T0 + 5), bus) as svc:
        resp = await svc.client.post("/alarms", json=bad)
        assert resp.status_code == 422
        assert "alarm.severity" in resp.json()["reasons"][0]["reason"]
        refusals = await svc.runtime.store.refusals()
        assert await all_decisions(svc.client) == []
    assert len(refusals) == 1 and refusals[0].source == "http"
    assert "alarm.severity" in refusals[0].reason and orjson.loads(refusals[0].body)["alarm"] == bad
    letters = [orjson.loads(m.value) for m in deadletter.pending()]
    assert len(letters) == 1 and letters[0]["reason"] == refusals[0].reason
    assert letters[0]["input"]["alarm"] == bad


async def test_alarm_list_answers_per_item_and_keeps_the_good_ones(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", json=[FIBRE_CUT[2], {"alarm_id": "x"}])
        assert resp.status_code == 202
        body = resp.json()
        assert (body["accepted"], body["rejected"]) == (1, 1)
        assert body["reasons"][0]["index"] == 1 and "missing field" in body["reasons"][0]["reason"]
        assert len(await svc.runtime.store.refusals()) == 1


async def test_body_that_is_not_json_is_refused_and_kept(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", content=b"{not json",
                                     headers={"content-type": "application/json"})
        assert resp.status_code == 422 and "not valid JSON" in resp.json()["reasons"][0]["reason"]
        refusals = await svc.runtime.store.refusals()
    assert refusals[0].body == "{not json"


async def test_complaint_and_operator_actions(settings):
    complaint = {"complaint_id": "CSP-1", "channel": "10086-8", "customer_id": "C-FS-017", "city": "FS",
                 "service_type": "internet", "scope": "all_users", "text": "全部无法上网"}
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/complaints", json=complaint)
        assert resp.status_code == 202 and resp.json()["records"] > 0
        ack = {"kind": "ack", "select": {"customer_id": "C-FS-017", "service_type": "internet"},
               "queue": "city.FS.netservice"}
        assert (await svc.client.post("/actions", json=ack)).status_code == 202
        # CL-4: no open fault matches → refused with a reason, and kept.
        resolve = {"kind": "resolve", "select": {"circuit_id": "GZ-INT-0001"}}
        refused = await svc.client.post("/actions", json=resolve)
        assert refused.status_code == 422 and "GZ-INT-0001" in refused.json()["reasons"][0]["reason"]
        wrong = await svc.client.post("/actions", json={"kind": "alarm", "select": {}})
        assert wrong.status_code == 422
        assert len(await svc.runtime.store.refusals()) == 2
        faults = (await svc.client.get("/faults", params={"city": "FS"})).json()
    assert faults[0]["kind"] == "complaint" and faults[0]["complaints"] == ["CSP-1"]


async def test_bus_producers_feed_the_engine_and_bad_messages_are_dead_lettered(settings):
    bus = InMemoryBus()
    decisions, deadletter = bus.subscribe(DECISIONS), bus.subscribe(DEADLETTER)
    async with live_service(settings, FakeClock(T0 + 5), bus) as svc:
        await bus.publish(ALARMS, "GZ", orjson.dumps(FIBRE_CUT[2]))
        first = orjson.loads((await asyncio.wait_for(decisions.get(), 5)).value)
        await bus.publish(ACTIONS, "GZ", b"not json")
        letter = orjson.loads((await asyncio.wait_for(deadletter.get(), 5)).value)
        log = await svc.runtime.store.log()
    assert first["type"] == "fault.opened" and first["root_resource"] == "GZ-OTN-A:1-3-1"
    assert letter["source"] == "bus" and "not valid JSON" in letter["reason"]
    assert [(e.kind, e.source) for e in log] == [("alarm", "bus")]


async def test_a_null_on_the_bus_is_an_input_refused_and_kept_not_a_timer_tick(settings):
    bus = InMemoryBus()
    deadletter = bus.subscribe(DEADLETTER)
    async with live_service(settings, FakeClock(T0 + 5), bus) as svc:
        await bus.publish(ACTIONS, "GZ", b"null")
        letter = orjson.loads((await asyncio.wait_for(deadletter.get(), 5)).value)
        refusals = await svc.runtime.store.refusals()
    assert letter["source"] == "bus" and "expected a JSON object, got NoneType" in letter["reason"]
    assert [(r.source, r.reason) for r in refusals] == [("bus", letter["reason"])]


async def test_embedded_store_keeps_the_production_read_model(settings):
    """The SQLite default holds the same read-model tables as PostgreSQL (shared/db, by its
    migrations): the alarms that came in, and faults, work orders and the audit trail that
    follow the decisions."""
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db import database_url
    from shared.db.models import alarms, audit, faults, work_orders

    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        stored = await all_decisions(svc.client)
    engine = create_async_engine(database_url(settings.database_url))
    try:
        async with engine.connect() as conn:
            n_faults = (await conn.execute(select(func.count()).select_from(faults))).scalar()
            n_orders = (await conn.execute(select(func.count()).select_from(work_orders))).scalar()
            n_audit = (await conn.execute(select(func.count()).select_from(audit))).scalar()
            kept = (await conn.execute(select(alarms.c.source, alarms.c.alarm_id, alarms.c.state,
                                              alarms.c.count))).all()
    finally:
        await engine.dispose()
    types = [d["record"]["type"] for d in stored]
    assert n_faults == types.count("fault.opened") == 4
    assert n_orders == types.count("work_order.created")
    assert n_audit == len(stored)
    assert sorted(kept) == sorted((a["source"], a["alarm_id"], a["state"], 1) for a in FIBRE_CUT)
