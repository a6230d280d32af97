"""The TMF event hub (services/hub.py) on SQLite and PostgreSQL: decision records projected into
`audit` become TMF621 events, POSTed over real HTTP to a listener (a `http.server` in a
thread), at least once, with the same eventId on every try; deliveries survive a restart; a
listener that keeps failing is disabled and reported; two hubs never both deliver an event."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.access import TokenStore
from services.hub import Hub
from shared.db.models import audit, hub_deliveries, hub_events
from shared.db.projection import project

AT = "2026-11-25T10:00:05+08:00"
CREATED = {"type": "work_order.created", "at": AT, "work_order_id": "W-000001",
           "fault_ids": ["F-000001"], "queue": "city.GZ.monitoring", "cc": [], "priority": "normal",
           "title": "【集团客户一般故障】南方航空集团公司 互联网专线中断", "rule": "RT-2"}
RESOLVED = {"type": "work_order.resolved", "at": "2026-11-25T12:00:05+08:00", "work_order_id": "W-000001"}
OPENED = {"type": "fault.opened", "at": AT, "fault_id": "F-000001", "incident_id": "I-000001",
          "kind": "outage", "circuit_id": "GZ-INT-0001", "customer_id": "C-NH", "city": "GZ",
          "service_type": "internet", "important": True, "cause_side": "core",
          "root_resource": "GZ-OTN-A:1-3-1", "layer": "transmission", "probable_cause": "LOS",
          "opened_at": "2026-11-25T10:00:00+08:00"}


def hub_of(engine: AsyncEngine, **kwargs) -> Hub:
    options = {"registry": CollectorRegistry(), "backoff_base_s": 0.01, "backoff_cap_s": 0.05,
               "timeout_s": 5.0, **kwargs}
    return Hub(engine, **options)


async def decide(engine: AsyncEngine, *records: dict, shard: str = "GZ") -> None:
    async with engine.begin() as conn:
        for record in records:
            await conn.run_sync(project, record, stage="dispatch", shard=shard)


async def until(check: Callable[[], bool], *steps: Callable, timeout_s: float = 15.0) -> None:
    """Run the steps (hub.pump_decisions, hub.deliver_once, ...) until `check()` holds."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        for step in steps:
            await step()
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------- events of decisions

async def test_a_listener_gets_the_events_of_a_work_order_over_http(any_db: AsyncEngine, listeners) -> None:
    listener = listeners()
    registry = CollectorRegistry()
    hub = hub_of(any_db, registry=registry)
    made = await hub.register(listener.url + "/events", "", who_token_id=None)
    assert made == {"id": made["id"], "callback": listener.url + "/events", "query": ""}

    stop = asyncio.Event()
    loop = asyncio.create_task(hub.run(stop, every_s=0.05))
    try:
        await decide(any_db, OPENED, CREATED)
        await until(lambda: len(listener.bodies()) >= 1)
        await decide(any_db, RESOLVED)
        await until(lambda: len(listener.bodies()) >= 3)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)

    created, status, resolved = listener.bodies("/events")
    assert created["eventType"] == "TroubleTicketCreateEvent"
    assert created["eventTime"] == AT
    assert len(created["eventId"]) == 32
    ticket = created["event"]["troubleTicket"]
    assert (ticket["id"], ticket["status"], ticket["channel"]["name"], ticket["ticketType"]) == (
        "W-000001", "acknowledged", "city.GZ.monitoring", "RT-2")
    assert [(e["id"], e["role"]) for e in ticket["relatedEntity"]] == [("F-000001", "fault")]
    assert ticket["href"].endswith("/troubleTicket/W-000001")
    assert [status["eventType"], resolved["eventType"]] == ["TroubleTicketStatusChangeEvent",
                                                           "TroubleTicketResolvedEvent"]
    assert {status["event"]["troubleTicket"]["status"], resolved["event"]["troubleTicket"]["status"]} == {
        "resolved"}
    assert len({created["eventId"], status["eventId"], resolved["eventId"]}) == 3
    assert registry.get_sample_value("faultline_hub_deliveries_total", {"outcome": "delivered"}) == 3
    assert registry.get_sample_value("faultline_hub_deliveries_pending") == 0


async def test_a_listener_that_fails_twice_gets_the_event_on_the_third_try(any_db: AsyncEngine,
                                                                             listeners) -> None:
    listener = listeners(script=[500, 500], then=201)
    registry = CollectorRegistry()
    hub = hub_of(any_db, registry=registry)
    made = await hub.register(listener.url, "eventType=TroubleTicketCreateEvent")
    await decide(any_db, CREATED)
    await until(lambda: len(listener.bodies()) >= 3, hub.pump_decisions, hub.deliver_once)

    tries = listener.bodies()
    assert len({t["eventId"] for t in tries}) == 1
    assert tries[0] == tries[1] == tries[2]
    await asyncio.sleep(0.1)
    await hub.deliver_once()
    assert len(listener.bodies()) == 3                      # 201 ended it
    state = await hub.get(made["id"])
    assert (state["failing_since"], state["disabled_at"], state["pending"]) == (None, None, 0)
    assert registry.get_sample_value("faultline_hub_deliveries_total", {"outcome": "failed"}) == 2
    assert registry.get_sample_value("faultline_hub_deliveries_total", {"outcome": "delivered"}) == 1
    async with any_db.connect() as conn:
        row = (await conn.execute(select(hub_deliveries))).mappings().one()
    assert (row["attempts"], row["last_error"]) == (3, None)


async def test_a_failure_is_recorded_without_the_answer_and_later_events_wait(any_db: AsyncEngine,
                                                                            listeners) -> None:
    listener = listeners(script=[503], then=201)
    hub = hub_of(any_db, backoff_base_s=30.0, backoff_cap_s=30.0)
    made = await hub.register(listener.url, None)
    await decide(any_db, CREATED)
    await hub.pump_decisions()
    await hub.deliver_once()
    await decide(any_db, RESOLVED)
    await hub.pump_decisions()
    await hub.deliver_once()                 # the first event waits 15..30 s: the later ones behind it
    assert len(listener.bodies()) == 1
    state = await hub.get(made["id"])
    assert (state["last_error"], state["pending"]) == ("HTTP 503", 3)
    assert state["failing_since"] is not None and state["disabled_at"] is None

    later = hub_of(any_db, clock=lambda: time.time() + 60)
    await until(lambda: len(listener.bodies()) >= 4, later.deliver_once)
    types = [b["eventType"] for b in listener.bodies()]
    assert types == ["TroubleTicketCreateEvent", "TroubleTicketCreateEvent", "TroubleTicketStatusChangeEvent",
                     "TroubleTicketResolvedEvent"]
    assert (await later.get(made["id"]))["failing_since"] is None


async def test_deliveries_survive_a_restart(any_db: AsyncEngine, listeners) -> None:
    listener = listeners()
    first = hub_of(any_db)
    await first.register(listener.url, "")
    await decide(any_db, CREATED, RESOLVED)
    assert await first.pump_decisions() == 3

    # The first hub claims the events and dies while posting the first one.
    started = asyncio.Event()

    async def hang(url: str, body: bytes) -> int:
        started.set()
        await asyncio.sleep(3600)
        return 201

    dying = asyncio.create_task(first.deliver_once(hang))
    await started.wait()
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    await first.aclose()

    # A new process: another engine on the same database, another hub. The lease of the dead
    # one holds for a while (no double send meanwhile), then the events go, in order, once.
    engine = create_async_engine(any_db.url)
    try:
        second = hub_of(engine)
        assert await second.deliver_once() == 0
        assert await second.pump_decisions() == 0          # the first one's cursor holds
        after_lease = hub_of(engine, clock=lambda: time.time() + 600)
        await until(lambda: len(listener.bodies()) >= 3, after_lease.deliver_once)
        await after_lease.deliver_once()
    finally:
        await engine.dispose()
    assert [b["eventType"] for b in listener.bodies()] == [
        "TroubleTicketCreateEvent", "TroubleTicketStatusChangeEvent", "TroubleTicketResolvedEvent"]


async def test_a_listener_that_always_fails_is_disabled_and_reported(any_db: AsyncEngine, listeners,
                                                                    caplog) -> None:
    listener = listeners(then=500)
    registry = CollectorRegistry()
    hub = hub_of(any_db, registry=registry, max_attempts=3)
    made = await hub.register(listener.url + "/hook?token=s3cret", "eventType=TroubleTicketCreateEvent")
    await decide(any_db, CREATED)
    caplog.set_level(logging.INFO, "faultline.hub")
    await hub.pump_decisions()
    state: dict = {}

    async def look() -> None:
        state.update(await hub.get(made["id"]))

    await until(lambda: state.get("disabled_at") is not None, hub.deliver_once, look)
    assert len(listener.bodies()) == 3
    assert state["disabled_reason"] == "a delivery failed 3 times (last: HTTP 500)"
    assert state["failing_since"] is not None and state["pending"] == 0
    assert registry.get_sample_value("faultline_hub_listeners_disabled") == 1
    assert registry.get_sample_value("faultline_hub_listeners_failing") == 0
    assert registry.get_sample_value("faultline_hub_deliveries_total", {"outcome": "failed"}) == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(f"listener {made['id']} " in w and "127.0.0.1" in w and "disabled" in w for w in warnings)
    assert not any("s3cret" in r.getMessage() for r in caplog.records)

    # Disabled: nothing more is queued or sent to it.
    await decide(any_db, {**CREATED, "work_order_id": "W-000002"})
    await hub.pump_decisions()
    await hub.deliver_once()
    assert len(listener.bodies()) == 3
    async with any_db.connect() as conn:
        assert (await conn.execute(select(hub_deliveries))).all() == []


async def test_a_listener_failing_longer_than_the_limit_is_disabled(any_db: AsyncEngine, listeners) -> None:
    listener = listeners(then=500)
    now = [time.time()]
    hub = hub_of(any_db, clock=lambda: now[0], max_failing_s=3600, backoff_base_s=60, backoff_cap_s=60)
    made = await hub.register(listener.url, "")
    await decide(any_db, CREATED)
    await hub.pump_decisions()
    await hub.deliver_once()
    assert (await hub.get(made["id"]))["disabled_at"] is None
    now[0] += 3601
    await hub.deliver_once()
    state = await hub.get(made["id"])
    assert state["disabled_at"] is not None
    assert state["disabled_reason"].startswith("deliveries failing since 20")
    assert len(listener.bodies()) == 2


async def test_a_listener_whose_query_does_not_match_gets_nothing(any_db: AsyncEngine, listeners) -> None:
    others, fs, gz_created = listeners(), listeners(), listeners()
    hub = hub_of(any_db)
    await hub.register(others.url, "eventType=TroubleTicketResolvedEvent")
    await hub.register(others.url, "queue=prov.specialist.transmission")
    await hub.register(others.url, "event.troubleTicket.priority=urgent")
    await hub.register(fs.url, "city=FS")
    await hub.register(gz_created.url, "city=GZ&eventType=TroubleTicketCreateEvent"
                                       "&event.troubleTicket.relatedEntity.id=F-000001")
    await decide(any_db, CREATED)
    await hub.pump_decisions()
    await until(lambda: len(gz_created.bodies()) >= 1, hub.deliver_once)
    await asyncio.sleep(0.05)
    await hub.deliver_once()
    assert others.bodies() == fs.bodies() == []
    assert [b["eventType"] for b in gz_created.bodies()] == ["TroubleTicketCreateEvent"]
    async with any_db.connect() as conn:
        assert len((await conn.execute(select(hub_deliveries))).all()) == 1


async def test_an_event_exists_only_if_the_callers_change_committed(any_db: AsyncEngine, listeners) -> None:
    listener = listeners()
    hub = hub_of(any_db)
    await hub.register(listener.url, "")
    ticket = {"id": "W-9", "status": "inProgress"}
    with pytest.raises(RuntimeError):
        async with any_db.begin() as conn:
            await hub.emit(conn, "TroubleTicketStatusChangeEvent", "troubleTicket", ticket, "city.GZ.x")
            raise RuntimeError("the change failed")
    async with any_db.begin() as conn:
        event_id = await hub.emit(conn, "TroubleTicketStatusChangeEvent", "troubleTicket", ticket,
                                  "city.GZ.x")
    async with any_db.connect() as conn:
        rows = (await conn.execute(select(hub_events.c.event_id, hub_events.c.city))).all()
    assert rows == [(event_id, "GZ")]
    await until(lambda: len(listener.bodies()) >= 1, hub.deliver_once)
    assert listener.bodies()[0]["eventId"] == event_id


async def test_two_hubs_never_both_deliver_an_event(any_db: AsyncEngine, listeners) -> None:
    """Two api replicas' hubs on one database, delivering at once (SKIP LOCKED on PostgreSQL,
    the compare-and-set lease everywhere): every event once, each listener's in order."""
    slow, fast = listeners(delay_s=0.02), listeners()
    one, two = hub_of(any_db, page=5), hub_of(any_db, page=5)
    await one.register(slow.url + "/slow", "")
    await one.register(fast.url + "/fast", "")
    orders = [{**CREATED, "work_order_id": f"W-{n:06d}"} for n in range(1, 21)]
    await decide(any_db, *orders)
    pumped = await asyncio.gather(one.pump_decisions(), two.pump_decisions())
    assert sorted(pumped) == [0, 20]                       # the cursor: one of them made the events

    async def work(hub: Hub) -> None:
        deadline = time.monotonic() + 30
        while len(slow.bodies()) < 20 or len(fast.bodies()) < 20:
            assert time.monotonic() < deadline, "timed out"
            await hub.deliver_once()
            await asyncio.sleep(0)

    await asyncio.gather(work(one), work(two))
    async with any_db.connect() as conn:
        order = (await conn.execute(select(hub_events.c.event_id).order_by(hub_events.c.id))).scalars().all()
    for listener in (slow, fast):
        assert [b["eventId"] for b in listener.bodies()] == order      # once each, in event order


async def test_the_pump_waits_for_a_transaction_holding_a_lower_id(any_db: AsyncEngine, listeners) -> None:
    """PostgreSQL: a record committed after a later one that is visible already is not skipped."""
    if any_db.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: ids commit in order")
    listener = listeners()
    hub = hub_of(any_db, gap_wait_s=60)
    await hub.register(listener.url, "")
    slow = await any_db.connect()
    try:
        await slow.begin()
        await slow.execute(insert(audit).values(at=AT, stage="dispatch", shard="GZ", type=CREATED["type"],
                                                work_order_id="W-000001", body=json.dumps(CREATED)))
        later = {**CREATED, "work_order_id": "W-000002"}
        await decide(any_db, later)
        assert await hub.pump_decisions() == 0                  # W-000001's id may still come
        assert await hub.pump_decisions() == 0
        await slow.commit()
    finally:
        await slow.close()
    assert await hub.pump_decisions() == 2
    # And a rolled-back id is passed once the transaction that took it has ended.
    async with any_db.connect() as conn:
        await conn.begin()
        await conn.execute(insert(audit).values(at=AT, stage="dispatch", shard="GZ", type=CREATED["type"],
                                                work_order_id="W-X", body=json.dumps(CREATED)))
        await conn.rollback()
    await decide(any_db, {**CREATED, "work_order_id": "W-000003"})
    assert await hub.pump_decisions() == 0                      # first sight of the gap
    made = [0]

    async def pump() -> None:                                   # next round, unless the server has
        made[0] += await hub.pump_decisions()                   # other transactions running long

    await until(lambda: made[0] == 1, pump)
    await until(lambda: len(listener.bodies()) >= 3, hub.deliver_once)
    assert [b["event"]["troubleTicket"]["id"] for b in listener.bodies()] == ["W-000001", "W-000002",
                                                                              "W-000003"]


async def test_the_loop_outlives_a_broken_listener_and_a_broken_record(any_db: AsyncEngine,
                                                                      listeners) -> None:
    good = listeners()
    hub = hub_of(any_db)
    await hub.register("http://127.0.0.1:9/nothing-listens", "")
    await hub.register(good.url, "")
    async with any_db.begin() as conn:                      # a row no projection would write
        await conn.execute(insert(audit).values(at=AT, stage="dispatch", shard="GZ",
                                                type="work_order.created", work_order_id=None,
                                                body="not json"))
    stop = asyncio.Event()
    loop = asyncio.create_task(hub.run(stop, every_s=0.05))
    try:
        await decide(any_db, CREATED)
        await until(lambda: len(good.bodies()) >= 1)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 10)
    assert [b["event"]["troubleTicket"]["id"] for b in good.bodies()] == ["W-000001"]
    assert not loop.cancelled() and loop.exception() is None


async def test_a_revoked_tokens_listener_gets_nothing_more_and_is_disabled(any_db: AsyncEngine,
                                                                          listeners) -> None:
    listener = listeners()
    hub = hub_of(any_db)
    store = TokenStore(any_db)
    token_id, _ = await store.create("read-only", None, "tests: monitoring")
    made = await hub.register(listener.url, "", who_token_id=token_id)
    await store.revoke(token_id)
    await decide(any_db, CREATED)
    assert await hub.pump_decisions() == 0            # no live listener: no event is kept at all
    await hub.deliver_once()
    assert listener.bodies() == []
    await hub.upkeep()
    state = await hub.get(made["id"])
    assert state["disabled_reason"] == "the token that registered it was revoked"


async def test_upkeep_removes_what_was_delivered_long_ago(any_db: AsyncEngine, listeners) -> None:
    listener = listeners()
    hub = hub_of(any_db, keep_s=3600)
    await hub.register(listener.url, "eventType=TroubleTicketCreateEvent")
    await decide(any_db, CREATED, RESOLVED)
    await hub.pump_decisions()
    await until(lambda: len(listener.bodies()) >= 1, hub.deliver_once)
    await hub.upkeep()
    async with any_db.connect() as conn:
        assert len((await conn.execute(select(hub_events))).all()) == 3
    later = hub_of(any_db, keep_s=3600, clock=lambda: time.time() + 7200)
    await later.upkeep()
    async with any_db.connect() as conn:
        assert (await conn.execute(select(hub_events))).all() == []
        assert (await conn.execute(select(hub_deliveries))).all() == []
