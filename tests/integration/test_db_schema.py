"""The schema on a real PostgreSQL: migrations from empty, twice; the input log's unique keys;
the read model's projection (ON CONFLICT in PostgreSQL's form)."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.db.migrate import current_revision_async, head, upgrade, upgrade_async
from shared.db.models import TABLES, alarms, audit, faults, input_log, metadata, notifications, work_orders
from shared.db.projection import project, project_alarm, project_alarms

from .pg_fixtures import to_libpq

OPENED = {"type": "fault.opened", "at": "2026-11-25T10:00:05+08:00", "fault_id": "F-000001",
          "incident_id": "I-000001", "kind": "outage", "circuit_id": "GZ-INT-0001",
          "customer_id": "C-NH", "city": "GZ", "service_type": "internet", "important": True,
          "cause_side": "core", "root_resource": "GZ-OTN-A:1-3-1", "layer": "transmission",
          "probable_cause": "LOS", "opened_at": "2026-11-25T10:00:00+08:00"}
STREAM = [
    OPENED,
    {"type": "work_order.created", "at": "2026-11-25T10:00:05+08:00", "work_order_id": "W-000001",
     "fault_ids": ["F-000001"], "queue": "prov.specialist.transmission", "cc": [],
     "priority": "normal", "title": "【集团客户一般故障】南方航空集团公司 互联网专线中断", "rule": "RT-2"},
    {"type": "fault.serious", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001",
     "rule": "SF-3", "trigger": "duration"},
    {"type": "sms", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001", "stage": "new",
     "recipients": ["prov.netservice"], "text": "【新|影响业务|严重故障|…】"},
    {"type": "phone.notify", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001",
     "target": "prov.netservice"},
    {"type": "work_order.upgraded", "at": "2026-11-25T10:30:00+08:00", "work_order_id": "W-000001",
     "priority": "urgent"},
    {"type": "escalation", "at": "2026-11-25T10:45:00+08:00", "fault_id": "F-000001",
     "reason": "ES-4", "to": "prov.netservice"},
    {"type": "alarm.unmapped", "at": "2026-11-25T10:50:00+08:00", "source": "nms", "alarm_id": "9",
     "resource_id": "X"},
    {"type": "fault.cleared", "at": "2026-11-25T12:00:05+08:00", "fault_id": "F-000001",
     "severity": "serious", "ended_at": "2026-11-25T12:00:00+08:00", "duration_s": 7200},
    {"type": "work_order.resolved", "at": "2026-11-25T12:00:05+08:00", "work_order_id": "W-000001"},
    {"type": "input.rejected", "at": "2026-11-25T12:01:00+08:00", "line": "faultline.actions:0:7",
     "reason": "select matches no open fault"},
]


@pytest.fixture
async def engine(pg_url: str):
    await upgrade_async(pg_url)
    eng = create_async_engine(pg_url)
    yield eng
    await eng.dispose()


async def _tables(eng: AsyncEngine) -> set[str]:
    async with eng.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _snapshot(eng: AsyncEngine) -> dict[str, list]:
    async with eng.connect() as conn:
        out = {}
        for table in TABLES:
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out


async def test_upgrade_creates_every_table_and_a_second_run_is_a_no_op(pg_url: str) -> None:
    assert await current_revision_async(pg_url) is None
    await upgrade_async(pg_url)
    eng = create_async_engine(pg_url)
    try:
        assert await _tables(eng) == {t.name for t in TABLES} | {"alembic_version"}
        assert await current_revision_async(pg_url) == head()
        async with eng.connect() as conn:
            ddl_before = (await conn.execute(text(
                "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public'"))).scalar_one()
        await upgrade_async(pg_url)
        # The sync entry point (what `faultline db upgrade` calls), from inside a running loop,
        # with a plain postgresql:// URL.
        upgrade(to_libpq(pg_url))
        async with eng.connect() as conn:
            ddl_after = (await conn.execute(text(
                "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public'"))).scalar_one()
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert ddl_after == ddl_before
        assert versions == [(head(),)]
    finally:
        await eng.dispose()


async def test_the_migrations_match_the_models(engine: AsyncEngine) -> None:
    def diff(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_the_input_log_refuses_a_duplicate_seq(engine: AsyncEngine) -> None:
    row = {"stage": "correlate", "shard": "GZ", "seq": 1, "kind": "input", "clock": 1.0,
           "body": "{}", "source_key": "faultline.alarms:0:1"}
    async with engine.begin() as conn:
        await conn.execute(insert(input_log).values(**row))
        # Another shard or stage may use the same seq and source key.
        await conn.execute(insert(input_log).values(**{**row, "shard": "FS"}))
        await conn.execute(insert(input_log).values(**{**row, "stage": "dispatch"}))
        # Ticks carry no source key: NULLs never collide.
        await conn.execute(insert(input_log).values(**{**row, "seq": 2, "kind": "tick", "source_key": None,
                                                       "body": None}))
        await conn.execute(insert(input_log).values(**{**row, "seq": 3, "kind": "tick", "source_key": None,
                                                       "body": None}))
    with pytest.raises(IntegrityError, match="uq_input_log_stage_shard_seq"):
        async with engine.begin() as conn:
            await conn.execute(insert(input_log).values(**{**row, "source_key": "faultline.alarms:0:2"}))


async def test_the_input_log_refuses_a_duplicate_source_key(engine: AsyncEngine) -> None:
    row = {"stage": "dispatch", "shard": "GZ", "seq": 1, "kind": "input", "clock": 1.0,
           "body": "{}", "source_key": "correlate:GZ:123"}
    async with engine.begin() as conn:
        await conn.execute(insert(input_log).values(**row))
    with pytest.raises(IntegrityError, match="uq_input_log_stage_shard_source_key"):
        async with engine.begin() as conn:
            await conn.execute(insert(input_log).values(**{**row, "seq": 2}))
    async with engine.connect() as conn:
        assert (await conn.execute(select(input_log.c.seq))).scalars().all() == [1]


async def test_alarms_batch_on_postgresql_is_kept_row_by_row(engine: AsyncEngine) -> None:
    """asyncpg's executemany applies the upsert row by row: one alarm's raise, repeat and
    clear in one batch give one row with two distinct events (no 'affect row a second time')."""
    raised = {"source": "nms", "alarm_id": "9", "resource_id": "GZ-OTN-A:1", "state": "raised",
              "event_time": "2026-11-25T10:49:00+08:00", "text": "LOS"}
    cleared = {**raised, "state": "cleared", "event_time": "2026-11-25T11:00:00+08:00", "text": None}
    batch = [(raised, "2026-11-25T10:50:00+08:00"), (raised, "2026-11-25T10:50:01+08:00"),
             (cleared, "2026-11-25T11:00:02+08:00")]
    async with engine.begin() as conn:
        await conn.run_sync(project_alarms, batch)
    async with engine.begin() as conn:                      # the batch redelivered: nothing changes
        await conn.run_sync(project_alarms, batch[2:])
    async with engine.connect() as conn:
        row = (await conn.execute(select(alarms))).mappings().one()
    assert (row["state"], row["text"], row["count"], row["first_seen_at"], row["last_seen_at"]) == (
        "cleared", "LOS", 2, "2026-11-25T10:50:00+08:00", "2026-11-25T11:00:02+08:00")


async def test_projection_on_postgresql_is_idempotent(engine: AsyncEngine) -> None:
    for _ in range(2):
        async with engine.begin() as conn:
            for rec in STREAM:
                await conn.run_sync(project, rec, stage="correlate", shard="GZ")
                await conn.run_sync(project, rec, stage="correlate", shard="GZ")
            await conn.run_sync(project_alarm, {"source": "nms", "alarm_id": "9", "state": "raised",
                                                "event_time": "2026-11-25T10:49:00+08:00"},
                                "2026-11-25T10:50:00+08:00")
        if _ == 0:
            first = await _snapshot(engine)
    assert await _snapshot(engine) == first

    async with engine.connect() as conn:
        fault = (await conn.execute(select(faults))).mappings().one()
        order = (await conn.execute(select(work_orders))).mappings().one()
        kinds = (await conn.execute(select(notifications.c.type))).scalars().all()
        audited = (await conn.execute(select(audit.c.type).order_by(audit.c.id))).scalars().all()
    assert (fault["severity"], fault["serious_at"], fault["rule"], fault["ended_at"], fault["duration_s"],
            fault["important"]) == ("serious", "2026-11-25T10:30:00+08:00", "SF-3",
                                    "2026-11-25T12:00:00+08:00", 7200, True)
    assert (order["status"], order["priority"], json.loads(order["fault_ids"])) == (
        "resolved", "urgent", ["F-000001"])
    assert sorted(kinds) == ["phone.notify", "sms"]
    assert audited == [r["type"] for r in STREAM]
    counts = {name: len(rows) for name, rows in first.items()}
    assert counts["alarms"] == counts["escalations"] == counts["rejected"] == counts["incidents"] == 1
