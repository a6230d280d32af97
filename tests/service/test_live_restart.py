"""Restart: the input log rebuilds the engine; nothing is re-emitted; overdue timers fire once."""

from __future__ import annotations

import logging

import orjson

from service.support import FIBRE_CUT, MINUTE, T0, FakeClock, all_decisions, live_service
from shared.bus import InMemoryBus
from shared.store import records
from shared.topics import DECISIONS


async def _state(svc) -> tuple[list, list]:
    faults = (await svc.client.get("/faults")).json()
    orders = (await svc.client.get("/workorders")).json()
    return faults, orders


async def test_restart_continues_from_the_store_and_fires_an_overdue_timer_exactly_once(settings):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        before_faults, before_orders = await _state(svc)
        before = await all_decisions(svc.client)
    assert all(f["severity"] == "general" for f in before_faults)

    # Down for 40 minutes: the TM-1 of China Southern's lines (SF-3, 30 min) falls due meanwhile.
    clock.jump(40 * MINUTE)
    bus = InMemoryBus()
    published = bus.subscribe(DECISIONS)
    async with live_service(settings, clock, bus) as svc:
        after_faults, after_orders = await _state(svc)
        after = await all_decisions(svc.client)
    assert after[:len(before)] == before                      # the stored history is untouched
    new = [d["record"] for d in after[len(before):]]
    assert [orjson.loads(m.value) for m in published.pending()] == new   # only the new ones went out
    serious = [r for r in new if r["type"] == "fault.serious"]
    assert [(r["fault_id"], r["rule"]) for r in serious] == [
        ("F-000001", "SF-3"), ("F-000002", "SF-3"), ("F-000003", "SF-3")]
    assert {r["at"] for r in serious} == {"2026-11-25T10:30:00+08:00"}     # at the due time
    assert [f["fault_id"] for f in after_faults] == [f["fault_id"] for f in before_faults]
    assert {f["fault_id"]: f["severity"] for f in after_faults}["F-000001"] == "serious"
    assert [o["work_order_id"] for o in after_orders][:len(before_orders)] == \
        [o["work_order_id"] for o in before_orders]

    # A second restart a minute later: same state, nothing published, nothing stored.
    clock.jump(MINUTE)
    bus = InMemoryBus()
    published = bus.subscribe(DECISIONS)
    async with live_service(settings, clock, bus) as svc:
        again_faults, again_orders = await _state(svc)
        again = await all_decisions(svc.client)
    assert published.pending() == []
    assert again == after
    assert (again_faults, again_orders) == (after_faults, after_orders)


async def test_timer_fires_once_while_running(settings):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        clock.jump(31 * MINUTE)
        await svc.runtime.engine.tick()
        await svc.runtime.engine.tick()
        serious = (await svc.client.get("/decisions", params={"type": "fault.serious"})).json()
        records = [d["record"] for d in serious["decisions"]]
    assert [r["fault_id"] for r in records] == ["F-000001", "F-000002", "F-000003"]   # SF-3, once each


async def test_restart_keeps_refused_inputs_and_clock_monotonic(settings):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        await svc.client.post("/actions", json={"kind": "resolve", "select": {"circuit_id": "GZ-INT-0001"}})
    clock.t = T0 - 3600                                   # the wall clock went back an hour
    async with live_service(settings, clock) as svc:
        assert len(await svc.runtime.store.refusals()) == 1
        assert svc.runtime.engine.pipeline.clock >= T0 + 5
        resp = await svc.client.post("/alarms", json=[FIBRE_CUT[0]])     # a repeat: still handled
        assert resp.json()["accepted"] == 1
        log = await svc.runtime.store.log()
    assert [e.arrival for e in log] == sorted(e.arrival for e in log)


async def test_recovery_warns_when_the_log_no_longer_reproduces_the_stored_records(settings, caplog):
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        async with svc.runtime.store.engine.begin() as conn:
            await conn.execute(records.delete().where(records.c.seq == 1))
    with caplog.at_level(logging.WARNING, logger="faultline.engine"):
        async with live_service(settings, clock):
            pass
    assert "recovery re-made" in caplog.text


async def test_a_database_of_the_engine_from_before_the_migrations_opens_with_its_refusals_kept(tmp_path):
    """The first embedded store kept refusals in a table named `rejected`, which the
    production schema's migrations now create: such a file is adopted, not refused."""
    import sqlite3

    from shared.store import Store

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:                     # the pre-migration store's table
        db.execute("CREATE TABLE rejected (id INTEGER PRIMARY KEY, arrival FLOAT NOT NULL, "
                   "source VARCHAR(32) NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL)")
        db.execute("INSERT INTO rejected (arrival, source, reason, body) "
                   "VALUES (1.0, 'http', 'state: missing', '{}')")
    store = await Store.open(f"sqlite:///{path}")
    try:
        assert [(r.source, r.reason) for r in await store.refusals()] == [("http", "state: missing")]
    finally:
        await store.close()


async def test_TM_6_back_after_three_years_down_one_stage_sms_per_fault_not_thirteen_thousand(settings):
    """A clock jump of years (or a downtime) must not fire 2-hourly stage SMS for every
    missed slot: each serious fault gets the first missed one (at its due time, T-2) and the
    next on the first slot after the clock it came back at."""
    clock = FakeClock(T0 + 5)
    async with live_service(settings, clock) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        clock.jump(31 * MINUTE)
        await svc.runtime.engine.tick()                      # SF-3: serious, the `new` SMS
    clock.jump(3 * 365 * 86400)
    async with live_service(settings, clock) as svc:
        updates = [d["record"] for d in await all_decisions(svc.client)
                   if d["record"]["type"] == "sms" and d["record"]["stage"] == "update"]
        pending = svc.runtime.engine.pipeline.dispatcher.timers.next_due()
    assert len(updates) == len({r["fault_id"] for r in updates}) == 3
    assert {r["at"] for r in updates} == {"2026-11-25T12:30:00+08:00"}     # the first missed slot
    assert clock.t < pending <= clock.t + 2 * 3600                        # then on after the jump
