"""Intake over HTTP on `faultline run`'s runtime: accepted inputs are published and become
stored decisions (read once the loops have settled); refused ones are 422, dead-lettered on
faultline.deadletter and kept in `rejected` — at once when they cannot be decoded, as their
outcome (CL-4, `wait_s`) when the rules refuse them."""

from __future__ import annotations

from collections import Counter

import orjson

from service.support import (
    FIBRE_CUT,
    T0,
    WAIT,
    FakeClock,
    alarm,
    all_decisions,
    live_service,
    log_entries,
    published,
    published_values,
    refusals,
)
from shared.topics import ACTIONS, ALARMS, DEADLETTER, DECISIONS, workorders_topic


def _canonical(records: list[dict]) -> Counter:
    return Counter(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records)


async def test_alarm_intake_stores_and_publishes_decisions(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", json=FIBRE_CUT, params=WAIT)
        assert resp.status_code == 202
        body = resp.json()
        assert (body["accepted"], body["rejected"], body["pending"]) == (3, 0, 0)
        assert body["records"] > 0 and len(body["input_ids"]) == 3 and None not in body["input_ids"]
        await svc.settle()
        stored = await all_decisions(svc.client)
        decisions = await published_values(svc.runtime, DECISIONS)
        orders = await published_values(svc.runtime, workorders_topic("prov.specialist.transmission"))
    types = [d["record"]["type"] for d in stored]
    assert types.count("fault.opened") == 4         # both NH lines, the diamond line, a city line
    opened = {d["record"]["circuit_id"] for d in stored if d["record"]["type"] == "fault.opened"}
    assert {"GZ-INT-0001", "GZ-INT-0002"} <= opened
    assert body["records"] == len(stored)           # the outcome counts what both stages made
    # What is stored is what was published on faultline.decisions, each record once (the two
    # stages publish their own outboxes, so only each stage's order is the stored order).
    assert _canonical(decisions) == _canonical([d["record"] for d in stored])
    assert len(decisions) == len(stored)
    assert orders[0]["type"] == "work_order.created" and orders[0]["queue"] == "prov.specialist.transmission"


async def test_faults_and_workorders_are_queryable_with_filters(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        await svc.settle()
        faults = (await svc.client.get("/faults", params={"city": "GZ", "open": "true"})).json()
        assert [f["fault_id"] for f in faults] == ["F-GZ-000001", "F-GZ-000002", "F-GZ-000003", "F-GZ-000004"]
        assert faults[0]["customer_name"] == "南方航空集团公司"
        assert faults[0]["root_resource"] == "GZ-OTN-A:1-3-1"
        assert (await svc.client.get("/faults", params={"city": "FS"})).json() == []
        assert (await svc.client.get("/faults", params={"severity": "serious"})).json() == []
        assert (await svc.client.get("/faults", params={"open": "false"})).json() == []
        one = await svc.client.get("/faults/F-GZ-000001")
        assert one.status_code == 200 and one.json()["work_orders"]
        assert (await svc.client.get("/faults/F-GZ-999999")).status_code == 404
        queue = (await svc.client.get("/workorders", params={"queue": "prov.specialist.transmission"})).json()
        assert len(queue) == 1 and queue[0]["fault_ids"] == ["F-GZ-000001", "F-GZ-000002", "F-GZ-000003"]
        assert queue[0]["title"].startswith("【集团客户一般故障】")
        wo = await svc.client.get(f"/workorders/{queue[0]['work_order_id']}")
        assert wo.json()["status"] == "acknowledged"
        assert (await svc.client.get("/workorders/W-GZ-999999")).status_code == 404


async def test_refused_alarm_is_422_stored_in_rejected_and_dead_lettered(settings):
    bad = alarm("GZ-OTN-A:1-3-1", "1", cause="LOS") | {"severity": "loud"}
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", json=bad)
        assert resp.status_code == 422
        reason = resp.json()["reasons"][0]["reason"]
        assert "alarm.severity" in reason and resp.json()["input_ids"] == [None]
        await svc.settle()
        kept = await refusals(svc.runtime)
        letters = await published_values(svc.runtime, DEADLETTER)
        assert await all_decisions(svc.client) == []
        assert await published(svc.runtime, ALARMS) == []          # never published as an input
    assert [(r.stage, r.reason) for r in kept] == [("api", reason)]
    assert orjson.loads(kept[0].body) == bad
    assert len(letters) == 1 and letters[0]["reason"] == reason
    assert letters[0]["stage"] == "api" and letters[0]["value"] == bad


async def test_alarm_list_answers_per_item_and_keeps_the_good_ones(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", json=[FIBRE_CUT[2], {"alarm_id": "x"}], params=WAIT)
        assert resp.status_code == 202
        body = resp.json()
        assert (body["accepted"], body["rejected"]) == (1, 1)
        assert body["reasons"][0]["index"] == 1 and "missing field" in body["reasons"][0]["reason"]
        assert body["input_ids"][1] is None and body["records"] > 0
        await svc.settle()
        kept = await refusals(svc.runtime)
        letters = await published_values(svc.runtime, DEADLETTER)
        faults = (await svc.client.get("/faults")).json()
    assert [(r.stage, orjson.loads(r.body)) for r in kept] == [("api", {"alarm_id": "x"})]
    assert [letter["value"] for letter in letters] == [{"alarm_id": "x"}]
    assert "GZ-INT-0003" in {f["circuit_id"] for f in faults}                    # the good one


async def test_body_that_is_not_json_is_refused_and_kept(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/alarms", content=b"{not json",
                                     headers={"content-type": "application/json"})
        assert resp.status_code == 422 and "not valid JSON" in resp.json()["reasons"][0]["reason"]
        await svc.settle()
        kept = await refusals(svc.runtime)
        letters = await published_values(svc.runtime, DEADLETTER)
    assert [r.body for r in kept] == ["{not json"]
    assert [letter["value"] for letter in letters] == ["{not json"]


async def test_complaint_and_operator_actions(settings):
    complaint = {"complaint_id": "CSP-1", "channel": "10086-8", "customer_id": "C-FS-017", "city": "FS",
                 "service_type": "internet", "scope": "all_users", "text": "全部无法上网"}
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        resp = await svc.client.post("/complaints", json=complaint, params=WAIT)
        assert resp.status_code == 202 and resp.json()["records"] > 0
        ack = {"kind": "ack", "select": {"customer_id": "C-FS-017", "service_type": "internet"},
               "queue": "city.FS.netservice"}
        resp = await svc.client.post("/actions", json=ack, params=WAIT)
        assert resp.status_code == 202 and resp.json()["accepted"] == 1
        # CL-4: no open fault matches → refused with a reason (the outcome waited for), and kept.
        resolve = {"kind": "resolve", "select": {"circuit_id": "GZ-INT-0001"}}
        refused = await svc.client.post("/actions", json=resolve, params=WAIT)
        assert refused.status_code == 422 and "GZ-INT-0001" in refused.json()["reasons"][0]["reason"]
        # Without wait_s the same action is 202 pending; its outcome tells the refusal.
        later = await svc.client.post("/actions", json=resolve)
        assert later.status_code == 202 and later.json()["pending"] == 1
        outcome = (await svc.client.get(f"/inputs/{later.json()['input_ids'][0]}", params=WAIT)).json()
        assert outcome["status"] == "refused" and outcome["reason"] == refused.json()["reasons"][0]["reason"]
        wrong = await svc.client.post("/actions", json={"kind": "alarm", "select": {}})
        assert wrong.status_code == 422
        await svc.settle()
        kept = await refusals(svc.runtime)
        faults = (await svc.client.get("/faults", params={"city": "FS"})).json()
        orders = (await svc.client.get("/workorders", params={"queue": "city.FS.netservice"})).json()
    assert sorted((r.stage, r.source_key) for r in kept if r.stage == "correlate") == sorted(
        ("correlate", r.json()["input_ids"][0]) for r in (refused, later))
    assert [r.reason for r in kept if r.stage == "api"] == [wrong.json()["reasons"][0]["reason"]]
    assert len(kept) == 3
    assert faults[0]["kind"] == "complaint" and faults[0]["complaints"] == ["CSP-1"]
    assert [o["status"] for o in orders] == ["inProgress"]                          # the ack


async def test_bus_producers_feed_the_loops_and_bad_messages_are_dead_lettered(settings):
    """Any producer of faultline.alarms and faultline.actions feeds the same loops as intake;
    what the router cannot use is dead-lettered naming the message, and kept."""
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        producer = svc.runtime.producer
        await producer.send(ALARMS, orjson.dumps(FIBRE_CUT[2]), key="GZ-OTN-A:1-3-1")
        await producer.send(ACTIONS, b"not json", key="GZ")
        await svc.settle()
        first = (await published_values(svc.runtime, DECISIONS))[0]
        letters = await published(svc.runtime, DEADLETTER)
        kept = await refusals(svc.runtime)
        logged = await log_entries(svc.runtime, "correlate")
    assert first["type"] == "fault.opened" and first["root_resource"] == "GZ-OTN-A:1-3-1"
    letter = orjson.loads(letters[0].value)
    assert len(letters) == 1 and letter["stage"] == "router" and "not valid JSON" in letter["reason"]
    assert (letter["topic"], letter["offset"], letter["value"]) == (ACTIONS, 0, "not json")
    assert [(r.stage, r.reason, r.body) for r in kept] == [("router", letter["reason"], "not json")]
    assert [(e.kind, e.source_key.split(":")[0]) for e in logged] == [("input", ALARMS)]


async def test_a_dead_letter_sent_again_is_kept_once(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.runtime.producer.send(ACTIONS, b"not json", key="GZ")
        await svc.settle()
        [letter] = await published(svc.runtime, DEADLETTER)
        # What the router sends when it handles that message again (not committed before a crash).
        await svc.runtime.producer.send(DEADLETTER, letter.value, key=letter.key)
        await svc.settle()
        kept = await refusals(svc.runtime)
    assert [(r.stage, r.source_key) for r in kept] == [("router", f"{ACTIONS}:0:0@{letter.timestamp_ms}")]


async def test_a_null_on_the_bus_is_an_input_refused_and_kept_not_a_timer_tick(settings):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        await svc.settle()
        clock.jump(40 * 60)                               # SF-3's TM-1 would fire on a tick
        await svc.runtime.producer.send(ACTIONS, b"null", key="GZ")
        await svc.settle()
        letters = await published_values(svc.runtime, DEADLETTER)
        kept = await refusals(svc.runtime)
        serious = (await svc.client.get("/faults", params={"severity": "serious"})).json()
        logged = await log_entries(svc.runtime, "correlate")
    assert len(letters) == 1 and letters[0]["stage"] == "router"
    assert letters[0]["reason"] == "expected a JSON object with kind" and letters[0]["value"] is None
    assert (letters[0]["topic"], letters[0]["offset"]) == (ACTIONS, 0)
    assert [(r.stage, r.reason, r.body) for r in kept] == [("router", letters[0]["reason"], "null")]
    assert serious == [] and "tick" not in {e.kind for e in logged}


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
        await svc.settle()
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


async def test_CL4_a_customer_select_across_cities_is_decided_over_http_as_replay_decides_it(settings):
    """Issue 13 on `faultline run`: China Southern's internet lines are in GZ's shard and in
    SZ's. With only the SZ line down, {customer_id, service_type} means its fault (202, the
    ack taken); with a GZ line down too, it matches two, in two shards: 422 with replay's
    refusal naming both, kept in `rejected` (the router's) and dead-lettered."""
    nh = {"customer_id": "C-NH", "service_type": "internet"}
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        down = await svc.client.post("/alarms", json=alarm("SZ-CPE-0001", "sz-1"), params=WAIT)
        assert down.status_code == 202
        escalate = {"kind": "escalate", "select": nh, "reason": "ES-6"}
        meant = await svc.client.post("/actions", json=escalate, params=WAIT)
        assert meant.status_code == 202 and meant.json()["accepted"] == 1
        down = await svc.client.post("/alarms", json=alarm("GZ-CPE-0001", "gz-1"), params=WAIT)
        assert down.status_code == 202
        confirm = {"kind": "confirm", "select": nh, "impact": "no_impact"}
        refused = await svc.client.post("/actions", json=confirm, params=WAIT)
        await svc.settle()
        stored = await all_decisions(svc.client)
        kept = await refusals(svc.runtime)
    reason = refused.json()["reasons"][0]["reason"]
    assert refused.status_code == 422 and reason == (
        "select {customer_id=C-NH, service_type=internet} matches 2 open faults (F-SZ-000001, "
        "F-GZ-000001); name one by fault_id")
    escalations = [d["record"] for d in stored if d["record"]["type"] == "escalation"]
    assert [(e["fault_id"], e["reason"]) for e in escalations] == [("F-SZ-000001", "ES-6")]
    assert [(r.stage, r.source_key, r.reason) for r in kept] == [
        ("router", refused.json()["input_ids"][0], reason)]
