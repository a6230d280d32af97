"""The read model: CONTRACT §3 output records (and the alarms and complaints that came in)
applied to the tables of `shared.db.models`.

Synchronous, on an SQLAlchemy `Connection`, so a stage can run it inside
`AsyncConnection.run_sync` in the same transaction as its input log and outbox:

    async with engine.begin() as conn:
        ...  # input_log, outbox
        await conn.run_sync(lambda c: [project(c, r, stage="correlate", shard="GZ") for r in out])

Every write is an upsert on the natural key (`ON CONFLICT ... DO UPDATE / DO NOTHING`, the
SQLite and PostgreSQL forms), so applying the same record twice leaves the same rows.
Every record is also appended to `audit` once (deduplicated by a digest of the stage,
shard and record). A record type this module does not know is kept in `audit` only.

Times are stored as the records' ISO-8601 strings (see `shared.db.models`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import Table, and_, bindparam, case, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from shared.db.bulk import driver_rows
from shared.db.models import (
    alarms,
    audit,
    complaints,
    escalations,
    faults,
    incidents,
    notifications,
    rejected,
    work_orders,
)

Record = Mapping[str, Any]

# Columns of `faults` that fault.opened sets (CONTRACT §3).
_OPENED = ("incident_id", "kind", "circuit_id", "customer_id", "city", "service_type", "important",
           "cause_side", "root_resource", "layer", "probable_cause", "opened_at")
_NOTIFICATION_KEY = ("fault_id", "type", "stage_or_rule", "queue_or_target", "at")
_CLOSED_STATUSES = ("closed", "cancelled")


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _digest(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _insert(conn: Connection, table: Table):
    """The dialect's INSERT that knows ON CONFLICT."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the read model supports sqlite and postgresql, not {name}")


def _upsert(conn: Connection, table: Table, values: Mapping[str, Any], key: Iterable[str],
            update: Mapping[str, Any] | None = None, where: Any = None) -> None:
    """INSERT values; on a conflict on `key`, SET `update` (when `where` holds) or do nothing."""
    stmt = _insert(conn, table).values(**values)
    key = list(key)
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=key, set_=dict(update), where=where)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=key)
    conn.execute(stmt)


# ---------------------------------------------------------------------------------------
# Statements, built once per dialect and executed many rows at a time.
#
# Each record becomes one operation: (the name of its statement, its parameters). A
# batch's operations run in order, consecutive ones of the same statement as one
# executemany (shared by every row of a storm's batch), so the rows end as if each record
# had been applied alone, in order, at a fraction of the cost of a statement per record.

Op = tuple[str, dict[str, Any]]

_STATEMENTS: dict[tuple[str, str], Any] = {}


def _p(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters named p_<column> (a bindparam may not share a column's name)."""
    return {f"p_{k}": v for k, v in values.items()}


def _bound(table: Table, columns: Iterable[str], **fixed: Any) -> dict[str, Any]:
    return {name: bindparam(f"p_{name}") for name in columns} | fixed


def _later_of(column: Any, new: Any) -> Any:
    """The later of a stored ISO time and the new one (same +08:00 form: text order is time order)."""
    return case((or_(column.is_(None), column < new), new), else_=column)


def _earlier_of(column: Any, new: Any) -> Any:
    return case((or_(column.is_(None), column > new), new), else_=column)


def _fault_statement(fields: tuple[str, ...], extra: Mapping[str, Any] | None = None):
    """Upsert the given fields of one fault; `updated_at` only moves forward."""
    def build(ins):
        stmt = ins(faults).values(**_bound(faults, ("fault_id", *fields, "updated_at")), **(extra or {}))
        new = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=["fault_id"],
            set_={**{name: new[name] for name in fields},
                  "updated_at": _later_of(faults.c.updated_at, new.updated_at)})
    return build


def _incident_statement(ins):
    count = (select(func.count()).select_from(faults)
             .where(faults.c.incident_id == bindparam("p_incident_id")).scalar_subquery())
    stmt = ins(incidents).values(incident_id=bindparam("p_incident_id"),
                                 root_resource=bindparam("p_root_resource"),
                                 first_opened_at=bindparam("p_first_opened_at"), fault_count=count)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["incident_id"],
        set_={"root_resource": func.coalesce(incidents.c.root_resource, new.root_resource),
              "first_opened_at": _earlier_of(incidents.c.first_opened_at, new.first_opened_at),
              "fault_count": new.fault_count})


_WO_CREATED = ("queue", "fault_ids", "cc", "priority", "title", "rule", "contact_by", "arrive_by",
               "created_at")


def _work_order_created_statement(ins):
    stmt = ins(work_orders).values(**_bound(work_orders, ("work_order_id", *_WO_CREATED, "updated_at")),
                                   status="acknowledged")
    new = stmt.excluded
    # A repeated `created` only fills what is missing: it neither reopens a resolved order
    # nor undoes a later upgrade or update.
    keep = {name: func.coalesce(work_orders.c[name], new[name]) for name in _WO_CREATED}
    for name in ("fault_ids", "cc"):
        keep[name] = case((work_orders.c[name] == "[]", new[name]), else_=work_orders.c[name])
    return stmt.on_conflict_do_update(
        index_elements=["work_order_id"],
        set_={**keep, "updated_at": _later_of(work_orders.c.updated_at, new.updated_at)})


def _work_order_statement(fields: tuple[str, ...], where: Any = None):
    def build(ins):
        stmt = ins(work_orders).values(**_bound(work_orders, ("work_order_id", *fields, "updated_at")))
        new = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=["work_order_id"],
            set_={**{name: new[name] for name in fields},
                  "updated_at": _later_of(work_orders.c.updated_at, new.updated_at)}, where=where)
    return build


def _keep_once(table: Table, columns: tuple[str, ...], key: Iterable[str]):
    def build(ins):
        return ins(table).values(**_bound(table, columns)).on_conflict_do_nothing(index_elements=list(key))
    return build


def _alarm_unmapped_statement(ins):
    stmt = ins(alarms).values(**_bound(alarms, ("source", "alarm_id", "resource_id", "first_seen_at",
                                                "last_seen_at")), count=1, unmapped=True)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["source", "alarm_id"],
        set_={"unmapped": true(), "resource_id": func.coalesce(alarms.c.resource_id, new.resource_id)})


_NOTIFICATION_COLUMNS = ("fault_id", "type", "stage_or_rule", "queue_or_target", "recipients", "text",
                         "deadline", "at")
_REJECTED_COLUMNS = ("at", "stage", "source_key", "reason", "body", "digest")
_AUDIT_COLUMNS = ("at", "stage", "shard", "type", "fault_id", "work_order_id", "body", "digest")

_BUILDERS: dict[str, Callable[[Callable[[Table], Any]], Any]] = {
    "fault.opened": _fault_statement(_OPENED, {"severity": "general"}),
    "fault.serious": _fault_statement(("severity", "serious_at", "rule", "trigger")),
    "fault.cleared": _fault_statement(("severity", "ended_at", "duration_s")),
    "fault.attributed": _fault_statement(("attribution",)),
    "incident": _incident_statement,
    "work_order.created": _work_order_created_statement,
    "work_order.upgraded": _work_order_statement(("priority",)),
    "work_order.upgraded+arrive_by": _work_order_statement(("priority", "arrive_by")),
    "work_order.updated": _work_order_statement(("fault_ids",)),
    # An order an operator already closed or cancelled stays so.
    "work_order.resolved": _work_order_statement(
        ("status", "resolved_at"), where=and_(*(work_orders.c.status != s for s in _CLOSED_STATUSES))),
    "escalation": _keep_once(escalations, ("fault_id", "reason", "to_queue", "at"), ("fault_id", "reason")),
    "notification": _keep_once(notifications, _NOTIFICATION_COLUMNS, _NOTIFICATION_KEY),
    "alarm.unmapped": _alarm_unmapped_statement,
    "rejected": _keep_once(rejected, _REJECTED_COLUMNS, ("digest",)),
    "audit": _keep_once(audit, _AUDIT_COLUMNS, ("digest",)),
}


def _statement(conn: Connection, name: str) -> Any:
    dialect = conn.dialect.name
    stmt = _STATEMENTS.get((dialect, name))
    if stmt is None:
        stmt = _STATEMENTS[(dialect, name)] = _BUILDERS[name](lambda table: _insert(conn, table))
    return stmt


def _run(conn: Connection, ops: Iterable[Op]) -> None:
    """Execute operations in order, each run of the same statement as one executemany."""
    name: str | None = None
    rows: list[dict[str, Any]] = []
    for op_name, params in ops:
        if op_name != name and rows:
            conn.exec_driver_sql(*driver_rows(conn.dialect, _statement(conn, name), rows))
            rows = []
        name = op_name
        rows.append(params)
    if rows:
        conn.exec_driver_sql(*driver_rows(conn.dialect, _statement(conn, name), rows))


# ---------------------------------------------------------------------------------------
# Faults and work orders: each record → its operation.

def _fault_op(name: str, rec: Record, at: str, fields: Mapping[str, Any]) -> Op:
    return name, _p({"fault_id": rec["fault_id"], **fields, "updated_at": at})


def _fault_opened(rec: Record, at: str) -> Op:
    return _fault_op("fault.opened", rec, at, {name: rec.get(name) for name in _OPENED})


def _fault_serious(rec: Record, at: str) -> Op:
    return _fault_op("fault.serious", rec, at, {"severity": "serious", "serious_at": at,
                                                "rule": rec.get("rule"), "trigger": rec.get("trigger")})


def _fault_cleared(rec: Record, at: str) -> Op:
    return _fault_op("fault.cleared", rec, at, {"severity": rec.get("severity"),
                                                "ended_at": rec.get("ended_at"),
                                                "duration_s": rec.get("duration_s")})


def _fault_attributed(rec: Record, at: str) -> Op:
    return _fault_op("fault.attributed", rec, at, {"attribution": rec.get("attribution")})


def _work_order_op(name: str, rec: Record, at: str, fields: Mapping[str, Any]) -> Op:
    return name, _p({"work_order_id": rec["work_order_id"], **fields, "updated_at": at})


def _work_order_created(rec: Record, at: str) -> Op:
    return _work_order_op("work_order.created", rec, at, {
        "queue": rec.get("queue"), "fault_ids": _json(list(rec.get("fault_ids") or [])),
        "cc": _json(list(rec.get("cc") or [])), "priority": rec.get("priority"),
        "title": rec.get("title"), "rule": rec.get("rule"), "contact_by": rec.get("contact_by"),
        "arrive_by": rec.get("arrive_by"), "created_at": at})


def _work_order_upgraded(rec: Record, at: str) -> Op:
    if rec.get("arrive_by") is not None:
        return _work_order_op("work_order.upgraded+arrive_by", rec, at,
                              {"priority": rec.get("priority"), "arrive_by": rec["arrive_by"]})
    return _work_order_op("work_order.upgraded", rec, at, {"priority": rec.get("priority")})


def _work_order_updated(rec: Record, at: str) -> Op:
    return _work_order_op("work_order.updated", rec, at,
                          {"fault_ids": _json(list(rec.get("fault_ids") or []))})


def _work_order_resolved(rec: Record, at: str) -> Op:
    return _work_order_op("work_order.resolved", rec, at, {"status": "resolved", "resolved_at": at})


# ---------------------------------------------------------------------------------------
# Escalations and notifications.

def _escalation(rec: Record, at: str) -> Op:
    return "escalation", _p({"fault_id": rec["fault_id"], "reason": rec["reason"],
                             "to_queue": rec.get("to"), "at": at})


def _notification(rec: Record, at: str, *, stage_or_rule: Any = None, queue_or_target: Any = None,
                  deadline: Any = None) -> Op:
    return "notification", _p({
        "fault_id": rec["fault_id"], "type": rec["type"], "stage_or_rule": stage_or_rule or "",
        "queue_or_target": queue_or_target or "", "recipients": _json(list(rec.get("recipients") or [])),
        "text": rec.get("text"), "deadline": deadline, "at": at})


def _sms(rec: Record, at: str) -> Op:
    return _notification(rec, at, stage_or_rule=rec.get("stage"))


def _phone_notify(rec: Record, at: str) -> Op:
    return _notification(rec, at, queue_or_target=rec.get("target"))


def _onsite_required(rec: Record, at: str) -> Op:
    return _notification(rec, at, stage_or_rule=rec.get("rule"), queue_or_target=rec.get("queue"),
                         deadline=rec.get("deadline"))


def _deadline_missed(rec: Record, at: str) -> Op:
    return _notification(rec, at, stage_or_rule=rec.get("rule"), deadline=rec.get("deadline"))


def _report_due(rec: Record, at: str) -> Op:
    return _notification(rec, at, deadline=rec.get("due"))


# ---------------------------------------------------------------------------------------
# Alarms and refusals.

def _alarm_unmapped(rec: Record, at: str) -> Op:
    return "alarm.unmapped", _p({"source": rec["source"], "alarm_id": rec["alarm_id"],
                                 "resource_id": rec.get("resource_id"), "first_seen_at": at,
                                 "last_seen_at": at})


def _input_rejected(rec: Record, at: str, *, stage: str, shard: str) -> Op:
    line = rec.get("line")
    return "rejected", _p({"at": at, "stage": stage, "source_key": None if line is None else str(line),
                           "reason": str(rec.get("reason") or ""), "body": _json(dict(rec)),
                           "digest": _digest(stage, shard, rec)})


_HANDLERS: dict[str, Callable[[Record, str], Op]] = {
    "fault.opened": _fault_opened,
    "fault.serious": _fault_serious,
    "fault.cleared": _fault_cleared,
    "fault.attributed": _fault_attributed,
    "work_order.created": _work_order_created,
    "work_order.upgraded": _work_order_upgraded,
    "work_order.updated": _work_order_updated,
    "work_order.resolved": _work_order_resolved,
    "escalation": _escalation,
    "onsite.required": _onsite_required,
    "deadline.missed": _deadline_missed,
    "sms": _sms,
    "phone.notify": _phone_notify,
    "report.due": _report_due,
    "alarm.unmapped": _alarm_unmapped,
}

#: Every CONTRACT §3 record type the read model projects (input.rejected goes to `rejected`).
RECORD_TYPES = frozenset(_HANDLERS) | {"input.rejected"}


# ---------------------------------------------------------------------------------------
# Public API.

def project_records(conn: Connection, records: Iterable[tuple[str, Record]], *, stage: str) -> None:
    """Apply CONTRACT §3 output records, as (shard, record) in order, to the read model and
    keep each in `audit`; then bring the incidents they opened faults of up to date (AL-6:
    root, first opening, how many faults). Idempotent: projecting the same records again
    changes no row. Raises KeyError when a record lacks its type, `at` or the id its type is
    keyed by."""
    ops: list[Op] = []
    kept: list[dict[str, Any]] = []
    incidents_seen: dict[str, tuple[str | None, str]] = {}
    for shard, record in records:
        kind = record["type"]
        at = record["at"]
        handler = _HANDLERS.get(kind)
        if handler is not None:
            ops.append(handler(record, at))
            if kind == "fault.opened" and record.get("incident_id") is not None:
                root, opened = record.get("root_resource"), record.get("opened_at") or at
                seen = incidents_seen.get(record["incident_id"])
                if seen is not None:
                    root, opened = seen[0] if seen[0] is not None else root, min(seen[1], opened)
                incidents_seen[record["incident_id"]] = (root, opened)
        elif kind == "input.rejected":
            ops.append(_input_rejected(record, at, stage=stage, shard=shard))
        kept.append(_p({"at": at, "stage": stage, "shard": shard, "type": kind,
                        "fault_id": record.get("fault_id"), "work_order_id": record.get("work_order_id"),
                        "body": _json(dict(record)), "digest": _digest(stage, shard, record)}))
    _run(conn, ops)
    # After the batch's faults: the count is what it would be after the last of them.
    _run(conn, (("incident", _p({"incident_id": i, "root_resource": root, "first_opened_at": opened}))
                for i, (root, opened) in incidents_seen.items()))
    _run(conn, (("audit", row) for row in kept))


def project(conn: Connection, record: Record, *, stage: str, shard: str) -> None:
    """Apply one CONTRACT §3 output record to the read model and keep it in `audit`
    (`project_records` for a batch)."""
    project_records(conn, [(shard, record)], stage=stage)


ALARM_FIELDS = ("resource_id", "probable_cause", "severity", "state", "event_time", "text")


def project_alarm(conn: Connection, alarm: Record, at: str) -> None:
    """Keep one normalized alarm (CONTRACT §2) that reached the service at `at`."""
    project_alarms(conn, [(alarm, at)])


def project_alarms(conn: Connection, arrived: list[tuple[Record, str]]) -> None:
    """Keep normalized alarms (CONTRACT §2), each with the time it reached the service, in order.

    One row per (source, alarm_id): the latest state, event time and text (a field the new
    event lacks keeps its value), when it was first and last seen, and how many distinct
    events (raise, clear, re-raise) it had. The same event delivered again (same state and
    event_time) changes nothing. One statement for the lot (the driver's executemany, row
    by row in order, so one alarm's events may share a batch): a storm's alarms cost one
    round trip per batch, not one each.
    """
    if not arrived:
        return
    _run(conn, (("alarm", {"p_source": a["source"], "p_alarm_id": a["alarm_id"], "p_at": at,
                           **{f"p_{name}": a.get(name) for name in ALARM_FIELDS}}) for a, at in arrived))


def _alarm_statement(ins):
    stmt = ins(alarms).values(
        source=bindparam("p_source"), alarm_id=bindparam("p_alarm_id"),
        **{name: bindparam(f"p_{name}") for name in ALARM_FIELDS},
        first_seen_at=bindparam("p_at"), last_seen_at=bindparam("p_at"), count=1, unmapped=False)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["source", "alarm_id"],
        set_={**{name: func.coalesce(new[name], alarms.c[name]) for name in ALARM_FIELDS},
              "last_seen_at": new.last_seen_at, "count": alarms.c.count + 1},
        where=or_(alarms.c.state.is_distinct_from(new.state),
                  alarms.c.event_time.is_distinct_from(new.event_time)))


_BUILDERS["alarm"] = _alarm_statement


def keep_refusal(conn: Connection, *, at: str, stage: str, source_key: str | None, reason: str,
                 body: str, digest: str) -> None:
    """Keep one refused input in `rejected`, once for its digest (a letter delivered again is
    not kept twice)."""
    _run(conn, [("rejected", _p({"at": at, "stage": stage, "source_key": source_key, "reason": reason,
                                 "body": body, "digest": digest}))])


def project_batch(conn: Connection, inputs: list[tuple[str, Record, str]],
                  records: Iterable[tuple[str, Record]], *, stage: str,
                  state: Iterable[tuple[int, StateUpdate]] = ()) -> None:
    """The read model of one stored batch, in its transaction: the inputs kept — (kind, body,
    arrival), alarms in one statement, complaints — then the decisions, as (shard, record),
    with the state no record carries (`apply_state`) where it happened: `state` holds
    (how many of the records came before it, update). A work order taken in hand (`ack`)
    and resolved by a later input of the same batch ends resolved, as in the engine."""
    project_alarms(conn, [(body, at) for kind, body, at in inputs if kind == "alarm"])
    for kind, body, at in inputs:
        if kind == "complaint":
            project_complaint(conn, body, at)
    records = list(records)
    done, pending = 0, []
    for position, change in state:
        if position > done:
            apply_state(conn, pending)
            project_records(conn, records[done:position], stage=stage)
            done, pending = position, []
        pending.append(change)
    apply_state(conn, pending)
    project_records(conn, records[done:], stage=stage)


STATE_TABLES = {"faults": faults, "complaints": complaints, "work_orders": work_orders}


StateUpdate = tuple[str, Mapping[str, Any], Mapping[str, Any]]


def apply_state(conn: Connection, updates: Iterable[StateUpdate]) -> None:
    """(table, key, values) updates of what the stages know and no CONTRACT §3 record says: a
    fault's complaints and whether its customer reported it (faults), the fault a complaint
    formed or joined (complaints), a work order taken in hand by `ack` (work_orders status).
    In order; consecutive updates of the same shape run as one executemany."""
    name: tuple | None = None
    rows: list[dict[str, Any]] = []
    for table_name, key, values in updates:
        shape = (table_name, tuple((k, v is None) for k, v in key.items()), tuple(values))
        if shape != name and rows:
            conn.execute(_update_statement(name), rows)
            rows = []
        name = shape
        rows.append({**{f"k_{k}": v for k, v in key.items() if v is not None},
                     **{f"v_{k}": v for k, v in values.items()}})
    if rows:
        conn.execute(_update_statement(name), rows)


_UPDATES: dict[tuple, Any] = {}


def _update_statement(shape: tuple) -> Any:
    """UPDATE table SET values WHERE key, built once per shape (a key None matches NULL)."""
    stmt = _UPDATES.get(shape)
    if stmt is None:
        table_name, key, values = shape
        table = STATE_TABLES[table_name]
        where = [table.c[k].is_(None) if null else table.c[k] == bindparam(f"k_{k}") for k, null in key]
        stmt = _UPDATES[shape] = update(table).where(*where).values(
            **{k: bindparam(f"v_{k}") for k in values})
    return stmt


def project_complaint(conn: Connection, complaint: Record, at: str, *,
                      fault_id: str | None = None) -> None:
    """Keep one complaint (CONTRACT §3 `complaint` input) received at `at`.

    Idempotent; `fault_id`, when given, links it to the fault it formed or joined (CL-3)
    and a later call with a fault_id sets the link on an existing row.
    """
    values = {"complaint_id": complaint["complaint_id"],
              **{name: complaint.get(name) for name in
                 ("customer_id", "city", "service_type", "channel", "scope", "text")},
              "received_at": at, "fault_id": fault_id}
    update = None
    if fault_id is not None:
        update = {"fault_id": fault_id}
    _upsert(conn, complaints, values, ["complaint_id"], update,
            where=None if update is None else complaints.c.fault_id.is_distinct_from(fault_id))
