"""The read model (shared.db.projection) on SQLite: every CONTRACT §3 record type, idempotence,
and the lifecycles of a fault and a work order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrate import upgrade
from shared.db.models import (
    TABLES,
    alarms,
    audit,
    complaints,
    escalations,
    faults,
    incidents,
    input_log,
    notifications,
    rejected,
    work_orders,
)
from shared.db.projection import (
    RECORD_TYPES,
    project,
    project_alarm,
    project_alarms,
    project_complaint,
    project_records,
)

STAGE, SHARD = "correlate", "GZ"

OPENED = {"type": "fault.opened", "at": "2026-11-25T10:00:05+08:00", "fault_id": "F-000001",
          "incident_id": "I-000001", "kind": "outage", "circuit_id": "GZ-INT-0001",
          "customer_id": "C-NH", "city": "GZ", "service_type": "internet", "important": True,
          "cause_side": "core", "root_resource": "GZ-OTN-A:1-3-1", "layer": "transmission",
          "probable_cause": "LOS", "opened_at": "2026-11-25T10:00:00+08:00"}
SERIOUS = {"type": "fault.serious", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001",
           "rule": "SF-3", "trigger": "duration"}
ATTRIBUTED = {"type": "fault.attributed", "at": "2026-11-25T10:40:00+08:00", "fault_id": "F-000001",
              "attribution": "ours"}
CLEARED = {"type": "fault.cleared", "at": "2026-11-25T12:00:05+08:00", "fault_id": "F-000001",
           "severity": "serious", "ended_at": "2026-11-25T12:00:00+08:00", "duration_s": 7200}
WO_CREATED = {"type": "work_order.created", "at": "2026-11-25T10:00:05+08:00",
              "work_order_id": "W-000001", "fault_ids": ["F-000001"],
              "queue": "prov.specialist.transmission", "cc": ["city.GZ.monitoring"],
              "priority": "normal", "title": "【集团客户一般故障】南方航空集团公司 互联网专线中断",
              "rule": "RT-2", "contact_by": "2026-11-25T10:15:05+08:00"}
WO_UPGRADED = {"type": "work_order.upgraded", "at": "2026-11-25T10:30:00+08:00",
               "work_order_id": "W-000001", "priority": "urgent",
               "arrive_by": "2026-11-25T12:30:00+08:00"}
WO_UPDATED = {"type": "work_order.updated", "at": "2026-11-25T10:35:00+08:00",
              "work_order_id": "W-000001", "fault_ids": ["F-000001", "F-000002"]}
WO_RESOLVED = {"type": "work_order.resolved", "at": "2026-11-25T12:00:05+08:00",
               "work_order_id": "W-000001"}

RECORDS = [
    {"type": "alarm.unmapped", "at": "2026-11-25T09:59:00+08:00", "source": "gd-otn-nms-1",
     "alarm_id": "884200", "resource_id": "GZ-UNKNOWN-1"},
    OPENED,
    {**OPENED, "fault_id": "F-000002", "circuit_id": "GZ-INT-0002", "customer_id": "C-GZ-002",
     "important": False, "at": "2026-11-25T10:00:06+08:00", "opened_at": "2026-11-25T10:00:01+08:00"},
    WO_CREATED,
    SERIOUS,
    {"type": "sms", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001", "stage": "new",
     "recipients": ["prov.netservice", "city.GZ.monitoring"],
     "text": "【新|影响业务|严重故障|南方航空集团公司互联网专线中断】2026/11/25 10:00，GZ-INT-0001"},
    {"type": "phone.notify", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001",
     "target": "prov.netservice"},
    {"type": "report.due", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001",
     "due": "2026-11-27T10:30:00+08:00"},
    WO_UPGRADED,
    {"type": "onsite.required", "at": "2026-11-25T10:30:00+08:00", "fault_id": "F-000001",
     "queue": "city.GZ.maintenance", "deadline": "2026-11-25T12:30:00+08:00", "rule": "TM-2"},
    WO_UPDATED,
    ATTRIBUTED,
    {"type": "escalation", "at": "2026-11-25T10:45:00+08:00", "fault_id": "F-000001",
     "reason": "ES-4", "to": "prov.netservice"},
    {"type": "deadline.missed", "at": "2026-11-25T12:30:00+08:00", "fault_id": "F-000002",
     "rule": "TM-9", "deadline": "2026-11-25T12:30:00+08:00"},
    {"type": "sms", "at": "2026-11-25T12:30:00+08:00", "fault_id": "F-000001", "stage": "update",
     "recipients": ["prov.netservice"], "text": "【进展|影响业务|严重故障|…】"},
    CLEARED,
    WO_RESOLVED,
    {"type": "input.rejected", "at": "2026-11-25T12:31:00+08:00", "line": 17,
     "reason": "select matches no open fault"},
]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "faultline.sqlite3"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{db_path}")
    yield eng
    eng.dispose()


def apply(engine: Engine, records: list[dict]) -> None:
    with engine.begin() as conn:
        for rec in records:
            project(conn, rec, stage=STAGE, shard=SHARD)


def snapshot(conn: Connection) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    out = {}
    for table in TABLES:
        rows = conn.execute(select(table)).all()
        out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


# What operators set on an alarm through TMF642 (migration 0009): projection leaves it alone.
UNTOUCHED = {"ack_state": "unacknowledged", "ack_user_id": None, "ack_at": None, "clear_user_id": None,
             "comments": "[]"}


def one(conn: Connection, table, **where) -> dict:
    q = select(table)
    for name, value in where.items():
        q = q.where(table.c[name] == value)
    rows = conn.execute(q).mappings().all()
    assert len(rows) == 1, rows
    return dict(rows[0])


def test_every_record_type_projects(engine: Engine) -> None:
    assert {r["type"] for r in RECORDS} == RECORD_TYPES
    apply(engine, RECORDS)
    with engine.connect() as conn:
        count = {t.name: len(conn.execute(select(t)).all()) for t in TABLES}
        assert count["faults"] == 2
        assert count["incidents"] == 1
        assert count["work_orders"] == 1
        assert count["escalations"] == 1
        assert count["notifications"] == 6      # 2 sms, phone, report, onsite, deadline
        assert count["alarms"] == 1
        assert count["rejected"] == 1
        assert count["audit"] == len(RECORDS)
        types = [r.type for r in conn.execute(select(audit).order_by(audit.c.id))]
        assert types == [r["type"] for r in RECORDS]
        assert json.loads(one(conn, audit, type="fault.serious")["body"]) == SERIOUS

        assert one(conn, alarms, alarm_id="884200")["unmapped"] is True
        assert one(conn, escalations, fault_id="F-000001") == {
            "fault_id": "F-000001", "reason": "ES-4", "to_queue": "prov.netservice",
            "at": "2026-11-25T10:45:00+08:00"}
        sms = one(conn, notifications, type="sms", stage_or_rule="new")
        assert json.loads(sms["recipients"]) == ["prov.netservice", "city.GZ.monitoring"]
        assert sms["text"].startswith("【新|")
        assert one(conn, notifications, type="phone.notify")["queue_or_target"] == "prov.netservice"
        assert one(conn, notifications, type="report.due")["deadline"] == "2026-11-27T10:30:00+08:00"
        onsite = one(conn, notifications, type="onsite.required")
        assert (onsite["stage_or_rule"], onsite["queue_or_target"], onsite["deadline"]) == (
            "TM-2", "city.GZ.maintenance", "2026-11-25T12:30:00+08:00")
        missed = one(conn, notifications, type="deadline.missed")
        assert (missed["fault_id"], missed["stage_or_rule"]) == ("F-000002", "TM-9")
        rej = one(conn, rejected)
        assert (rej["stage"], rej["source_key"], rej["reason"]) == (
            STAGE, "17", "select matches no open fault")
        assert one(conn, incidents, incident_id="I-000001") == {
            "incident_id": "I-000001", "root_resource": "GZ-OTN-A:1-3-1",
            "first_opened_at": "2026-11-25T10:00:00+08:00", "fault_count": 2}


def test_projecting_the_same_records_twice_changes_nothing(engine: Engine) -> None:
    apply(engine, RECORDS)
    with engine.connect() as conn:
        before = snapshot(conn)
    apply(engine, RECORDS)                               # the whole stream again
    for rec in RECORDS:                                  # and each record twice in a row
        apply(engine, [rec, rec])
    with engine.connect() as conn:
        assert snapshot(conn) == before


def test_each_record_twice_in_a_row_equals_once(tmp_path: Path) -> None:
    states = []
    for doubled in (False, True):
        path = tmp_path / f"db{int(doubled)}.sqlite3"
        upgrade(f"sqlite:///{path}")
        eng = create_engine(f"sqlite:///{path}")
        apply(eng, [r for rec in RECORDS for r in ([rec, rec] if doubled else [rec])])
        with eng.connect() as conn:
            states.append(snapshot(conn))
        eng.dispose()
    assert states[0] == states[1]


def test_fault_lifecycle_ends_in_one_row_with_every_field(engine: Engine) -> None:
    apply(engine, [OPENED, SERIOUS, ATTRIBUTED, CLEARED])
    with engine.connect() as conn:
        row = one(conn, faults)
    assert row == {
        "fault_id": "F-000001", "incident_id": "I-000001", "kind": "outage",
        "circuit_id": "GZ-INT-0001", "customer_id": "C-NH", "city": "GZ",
        "service_type": "internet", "important": True, "cause_side": "core",
        "root_resource": "GZ-OTN-A:1-3-1", "layer": "transmission", "probable_cause": "LOS",
        "opened_at": "2026-11-25T10:00:00+08:00", "severity": "serious",
        "serious_at": "2026-11-25T10:30:00+08:00", "rule": "SF-3", "trigger": "duration",
        "ended_at": "2026-11-25T12:00:00+08:00", "duration_s": 7200, "attribution": "ours",
        "updated_at": "2026-11-25T12:00:05+08:00",
        # No record carries these: the correlate shard writes them (projection.apply_state).
        "complaints": "[]", "customer_reported": False}


def test_fault_severity_while_open(engine: Engine) -> None:
    apply(engine, [OPENED])
    with engine.connect() as conn:
        assert one(conn, faults)["severity"] == "general"
    apply(engine, [SERIOUS])
    with engine.connect() as conn:
        assert one(conn, faults)["severity"] == "serious"


def test_an_earlier_record_again_keeps_the_later_fields(engine: Engine) -> None:
    apply(engine, [OPENED, SERIOUS, CLEARED])
    with engine.connect() as conn:
        before = one(conn, faults)
    apply(engine, [OPENED, SERIOUS])                     # redelivered out of order
    with engine.connect() as conn:
        assert one(conn, faults) == before


def test_work_order_lifecycle(engine: Engine) -> None:
    apply(engine, [WO_CREATED])
    with engine.connect() as conn:
        row = one(conn, work_orders)
    assert row["status"] == "acknowledged"
    assert (row["queue"], row["priority"], row["rule"]) == ("prov.specialist.transmission", "normal", "RT-2")
    assert json.loads(row["fault_ids"]) == ["F-000001"] and json.loads(row["cc"]) == ["city.GZ.monitoring"]
    assert row["contact_by"] == "2026-11-25T10:15:05+08:00" and row["arrive_by"] is None

    apply(engine, [WO_UPGRADED, WO_UPDATED, WO_RESOLVED])
    with engine.connect() as conn:
        row = one(conn, work_orders)
    assert row == {
        "work_order_id": "W-000001", "queue": "prov.specialist.transmission",
        "fault_ids": '["F-000001","F-000002"]', "cc": '["city.GZ.monitoring"]', "priority": "urgent",
        "title": WO_CREATED["title"], "rule": "RT-2", "status": "resolved",
        "contact_by": "2026-11-25T10:15:05+08:00", "arrive_by": "2026-11-25T12:30:00+08:00",
        "created_at": "2026-11-25T10:00:05+08:00", "updated_at": "2026-11-25T12:00:05+08:00",
        "resolved_at": "2026-11-25T12:00:05+08:00"}

    # An upgrade without arrive_by keeps the one there; a repeated `created` neither reopens
    # the order nor undoes the upgrade and the update.
    apply(engine, [{**WO_UPGRADED, "arrive_by": None}, WO_CREATED])
    with engine.connect() as conn:
        again = one(conn, work_orders)
    assert again == row


def test_a_closed_work_order_stays_closed(engine: Engine) -> None:
    apply(engine, [WO_CREATED])
    with engine.begin() as conn:
        conn.execute(work_orders.update().values(status="closed"))
    apply(engine, [WO_RESOLVED])
    with engine.connect() as conn:
        assert one(conn, work_orders)["status"] == "closed"


def test_AL_1_AL_7_alarms_keep_the_latest_event_count_distinct_ones_and_stay_marked_unmapped(
        engine: Engine) -> None:
    raised = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
              "probable_cause": "LOS", "severity": "critical", "state": "raised",
              "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}
    cleared = {**raised, "state": "cleared", "event_time": "2026-11-25T12:00:00+08:00"}
    with engine.begin() as conn:
        project_alarm(conn, raised, "2026-11-25T10:00:05+08:00")
        project_alarm(conn, raised, "2026-11-25T10:00:09+08:00")      # redelivered
        project_alarm(conn, cleared, "2026-11-25T12:00:03+08:00")
        project_alarm(conn, cleared, "2026-11-25T12:00:04+08:00")
        project(conn, {"type": "alarm.unmapped", "at": "2026-11-25T12:00:04+08:00",
                       "source": "gd-otn-nms-1", "alarm_id": "884213",
                       "resource_id": "GZ-OTN-A:1-3-1"}, stage=STAGE, shard=SHARD)
        row = one(conn, alarms)
    assert row == {**cleared, "first_seen_at": "2026-11-25T10:00:05+08:00",
                   "last_seen_at": "2026-11-25T12:00:03+08:00", "count": 2, "unmapped": True, **UNTOUCHED}


def test_alarms_in_one_batch_are_kept_row_by_row_in_arrival_order(engine: Engine) -> None:
    """One executemany for a storm's batch: an alarm raised, redelivered and cleared within
    the batch ends as it would alarm by alarm (one row, two distinct events)."""
    raised = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
              "probable_cause": "LOS", "severity": "critical", "state": "raised",
              "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}
    cleared = {**raised, "state": "cleared", "event_time": "2026-11-25T12:00:00+08:00", "text": None}
    other = {**raised, "alarm_id": "884214", "resource_id": "GZ-OTN-A:1-3-2"}
    with engine.begin() as conn:
        project_alarms(conn, [(raised, "2026-11-25T10:00:05+08:00"), (other, "2026-11-25T10:00:06+08:00"),
                              (raised, "2026-11-25T10:00:09+08:00"), (cleared, "2026-11-25T12:00:03+08:00")])
        project_alarms(conn, [])
        rows = {r["alarm_id"]: r for r in conn.execute(select(alarms)).mappings()}
    assert rows["884213"] == {**cleared, "text": "R_LOS", "first_seen_at": "2026-11-25T10:00:05+08:00",
                              "last_seen_at": "2026-11-25T12:00:03+08:00", "count": 2, "unmapped": False,
                              **UNTOUCHED}
    assert (rows["884214"]["count"], rows["884214"]["state"]) == (1, "raised")


def test_complaints_and_their_fault(engine: Engine) -> None:
    complaint = {"complaint_id": "CSP-20261125-0031", "channel": "10086-8", "customer_id": "C-FS-017",
                 "city": "FS", "service_type": "internet", "scope": "all_users", "text": "全部无法上网"}
    with engine.begin() as conn:
        project_complaint(conn, complaint, "2026-11-25T10:07:00+08:00")
        project_complaint(conn, complaint, "2026-11-25T10:07:30+08:00")
        assert one(conn, complaints)["fault_id"] is None
        project_complaint(conn, complaint, "2026-11-25T10:07:30+08:00", fault_id="F-000009")
        project_complaint(conn, complaint, "2026-11-25T10:08:00+08:00")
        row = one(conn, complaints)
    assert row == {**complaint, "received_at": "2026-11-25T10:07:00+08:00", "fault_id": "F-000009"}


def test_a_complaint_fault_without_opened_at(engine: Engine) -> None:
    rec = {**OPENED, "fault_id": "F-000003", "incident_id": "I-000003", "kind": "complaint",
           "circuit_id": None, "root_resource": None, "layer": None, "probable_cause": None,
           "opened_at": None, "at": "2026-11-25T10:07:00+08:00"}
    apply(engine, [rec])
    with engine.connect() as conn:
        assert one(conn, faults)["opened_at"] is None
        assert one(conn, incidents)["first_opened_at"] == "2026-11-25T10:07:00+08:00"


def test_an_unknown_record_type_is_kept_in_audit_only(engine: Engine) -> None:
    apply(engine, [{"type": "fault.reopened", "at": "2026-11-25T10:00:00+08:00", "fault_id": "F-1"}])
    with engine.connect() as conn:
        assert one(conn, audit)["type"] == "fault.reopened"
        assert conn.execute(select(faults)).all() == []


async def test_projection_runs_in_the_transaction_of_the_input_log(db_path: Path) -> None:
    """The stage's pattern: input log, outbox and read model in one async transaction."""
    eng = create_async_engine(f"sqlite+aiosqlite:///{db_path}")
    try:
        async with eng.begin() as conn:
            await conn.execute(insert(input_log).values(
                stage=STAGE, shard=SHARD, seq=1, kind="input", clock=1795572005.0, body="{}",
                source_key="faultline.alarms:0:1"))
            await conn.run_sync(project, OPENED, stage=STAGE, shard=SHARD)
        with pytest.raises(RuntimeError):
            async with eng.begin() as conn:
                await conn.run_sync(project, SERIOUS, stage=STAGE, shard=SHARD)
                raise RuntimeError("the step failed")        # rolls the projection back
        async with eng.connect() as conn:
            rows = (await conn.execute(select(faults.c.severity))).scalars().all()
            logged = (await conn.execute(select(input_log.c.seq))).scalars().all()
    finally:
        await eng.dispose()
    assert rows == ["general"] and logged == [1]


def test_rejected_rows_written_by_a_stage_need_no_digest(engine: Engine) -> None:
    """A stage refusing an input itself writes `rejected` directly (services/runtime/shard_log.py)."""
    row = {"at": "2026-11-25T10:00:00+08:00", "stage": "dispatch", "source_key": "faultline.actions:0:3",
           "reason": "bad JSON", "body": '"{"'}
    with engine.begin() as conn:
        conn.execute(insert(rejected), [row, row])
        project(conn, RECORDS[-1], stage=STAGE, shard=SHARD)
        assert len(conn.execute(select(rejected)).all()) == 3


def test_a_batch_projects_as_its_records_one_by_one(tmp_path: Path) -> None:
    """project_records runs consecutive records of one statement as one executemany: the rows
    end as if each record had been applied alone, in order — every type, each twice in a row
    (two orders resolved together, a second opening of the same fault), and the incident's
    fault count as after the last opening."""
    second_wo = {**WO_CREATED, "work_order_id": "W-000002", "at": "2026-11-25T10:00:07+08:00"}
    doubled = [r for rec in RECORDS for r in (rec, rec)]
    records = [*doubled, second_wo, {**WO_RESOLVED, "work_order_id": "W-000002"}, WO_RESOLVED]
    rows = []
    for batched in (False, True):
        path = tmp_path / f"{batched}.sqlite3"
        upgrade(f"sqlite+aiosqlite:///{path}")
        eng = create_engine(f"sqlite:///{path}")
        with eng.begin() as conn:
            if batched:
                project_records(conn, [(SHARD, r) for r in records], stage=STAGE)
            else:
                for r in records:
                    project(conn, r, stage=STAGE, shard=SHARD)
        with eng.connect() as conn:
            rows.append(snapshot(conn))
            assert one(conn, work_orders, work_order_id="W-000002")["status"] == "resolved"
            assert one(conn, incidents, incident_id="I-000001")["fault_count"] == 2
        eng.dispose()
    assert rows[0] == rows[1]


def test_state_applies_where_it_happened_in_the_batch(engine: Engine) -> None:
    """A work order taken in hand (`ack`: state no record carries) and resolved by a later
    input of the same stored batch ends resolved, as in the engine; taken in hand after its
    creation and nothing else, it ends inProgress."""
    from shared.db.projection import project_batch

    ack = ("work_orders", {"work_order_id": "W-000001"}, {"status": "inProgress"})
    records = [("GZ", OPENED), ("GZ", WO_CREATED), ("GZ", WO_RESOLVED)]
    with engine.begin() as conn:
        project_batch(conn, [], records, stage="dispatch", state=[(2, ack)])
    with engine.connect() as conn:
        assert one(conn, work_orders, work_order_id="W-000001")["status"] == "resolved"
    with engine.begin() as conn:
        project_batch(conn, [], [("GZ", {**WO_CREATED, "work_order_id": "W-000002"})], stage="dispatch",
                      state=[(1, ("work_orders", {"work_order_id": "W-000002"}, {"status": "inProgress"}))])
    with engine.connect() as conn:
        assert one(conn, work_orders, work_order_id="W-000002")["status"] == "inProgress"
