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
from sqlalchemy import Table, bindparam, case, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

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


def _later(column: Any, at: str) -> Any:
    """The later of a stored ISO time and `at` (same +08:00 form: text order is time order)."""
    return case((or_(column.is_(None), column < at), at), else_=column)


def _earlier(column: Any, at: str | None) -> Any:
    if at is None:
        return column
    return case((or_(column.is_(None), column > at), at), else_=column)


# ---------------------------------------------------------------------------------------
# Faults and incidents.

def _fault(conn: Connection, rec: Record, at: str, fields: Mapping[str, Any]) -> None:
    """Upsert the given fields of one fault; `updated_at` only moves forward."""
    _upsert(conn, faults, {"fault_id": rec["fault_id"], **fields, "updated_at": at}, ["fault_id"],
            {**fields, "updated_at": _later(faults.c.updated_at, at)})


def _fault_opened(conn: Connection, rec: Record, at: str) -> None:
    fields = {name: rec.get(name) for name in _OPENED}
    _upsert(conn, faults,
            {"fault_id": rec["fault_id"], **fields, "severity": "general", "updated_at": at},
            ["fault_id"], {**fields, "updated_at": _later(faults.c.updated_at, at)})
    incident_id = rec.get("incident_id")
    if incident_id is not None:
        _incident(conn, incident_id, rec.get("root_resource"), rec.get("opened_at") or at)


def _incident(conn: Connection, incident_id: str, root_resource: str | None, opened: str) -> None:
    count = conn.execute(select(func.count()).select_from(faults)
                         .where(faults.c.incident_id == incident_id)).scalar_one()
    _upsert(conn, incidents,
            {"incident_id": incident_id, "root_resource": root_resource,
             "first_opened_at": opened, "fault_count": count},
            ["incident_id"],
            {"root_resource": func.coalesce(incidents.c.root_resource, root_resource),
             "first_opened_at": _earlier(incidents.c.first_opened_at, opened),
             "fault_count": count})


def _fault_serious(conn: Connection, rec: Record, at: str) -> None:
    _fault(conn, rec, at, {"severity": "serious", "serious_at": at, "rule": rec.get("rule"),
                           "trigger": rec.get("trigger")})


def _fault_cleared(conn: Connection, rec: Record, at: str) -> None:
    _fault(conn, rec, at, {"severity": rec.get("severity"), "ended_at": rec.get("ended_at"),
                           "duration_s": rec.get("duration_s")})


def _fault_attributed(conn: Connection, rec: Record, at: str) -> None:
    _fault(conn, rec, at, {"attribution": rec.get("attribution")})


# ---------------------------------------------------------------------------------------
# Work orders (TMF621 status: created acknowledged; resolved by work_order.resolved).

def _work_order(conn: Connection, rec: Record, at: str, fields: Mapping[str, Any],
                where: Any = None) -> None:
    _upsert(conn, work_orders,
            {"work_order_id": rec["work_order_id"], **fields, "updated_at": at},
            ["work_order_id"],
            {**fields, "updated_at": _later(work_orders.c.updated_at, at)}, where)


def _work_order_created(conn: Connection, rec: Record, at: str) -> None:
    fields = {"queue": rec.get("queue"), "fault_ids": _json(list(rec.get("fault_ids") or [])),
              "cc": _json(list(rec.get("cc") or [])), "priority": rec.get("priority"),
              "title": rec.get("title"), "rule": rec.get("rule"),
              "contact_by": rec.get("contact_by"), "arrive_by": rec.get("arrive_by"),
              "created_at": at}
    # A repeated `created` only fills what is missing: it neither reopens a resolved order
    # nor undoes a later upgrade or update.
    keep = {name: func.coalesce(work_orders.c[name], value) for name, value in fields.items()}
    for name in ("fault_ids", "cc"):
        keep[name] = case((work_orders.c[name] == "[]", fields[name]), else_=work_orders.c[name])
    _upsert(conn, work_orders,
            {"work_order_id": rec["work_order_id"], **fields, "status": "acknowledged",
             "updated_at": at},
            ["work_order_id"],
            {**keep, "updated_at": _later(work_orders.c.updated_at, at)})


def _work_order_upgraded(conn: Connection, rec: Record, at: str) -> None:
    fields: dict[str, Any] = {"priority": rec.get("priority")}
    if rec.get("arrive_by") is not None:
        fields["arrive_by"] = rec["arrive_by"]
    _work_order(conn, rec, at, fields)


def _work_order_updated(conn: Connection, rec: Record, at: str) -> None:
    _work_order(conn, rec, at, {"fault_ids": _json(list(rec.get("fault_ids") or []))})


def _work_order_resolved(conn: Connection, rec: Record, at: str) -> None:
    # An order an operator already closed or cancelled stays so.
    _work_order(conn, rec, at, {"status": "resolved", "resolved_at": at},
                where=work_orders.c.status.notin_(_CLOSED_STATUSES))


# ---------------------------------------------------------------------------------------
# Escalations and notifications.

def _escalation(conn: Connection, rec: Record, at: str) -> None:
    _upsert(conn, escalations, {"fault_id": rec["fault_id"], "reason": rec["reason"],
                                "to_queue": rec.get("to"), "at": at},
            ["fault_id", "reason"])


def _notification(conn: Connection, rec: Record, at: str, *, stage_or_rule: Any = None,
                  queue_or_target: Any = None, deadline: Any = None) -> None:
    _upsert(conn, notifications,
            {"fault_id": rec["fault_id"], "type": rec["type"],
             "stage_or_rule": stage_or_rule or "", "queue_or_target": queue_or_target or "",
             "recipients": _json(list(rec.get("recipients") or [])), "text": rec.get("text"),
             "deadline": deadline, "at": at},
            _NOTIFICATION_KEY)


def _sms(conn: Connection, rec: Record, at: str) -> None:
    _notification(conn, rec, at, stage_or_rule=rec.get("stage"))


def _phone_notify(conn: Connection, rec: Record, at: str) -> None:
    _notification(conn, rec, at, queue_or_target=rec.get("target"))


def _onsite_required(conn: Connection, rec: Record, at: str) -> None:
    _notification(conn, rec, at, stage_or_rule=rec.get("rule"), queue_or_target=rec.get("queue"),
                  deadline=rec.get("deadline"))


def _deadline_missed(conn: Connection, rec: Record, at: str) -> None:
    _notification(conn, rec, at, stage_or_rule=rec.get("rule"), deadline=rec.get("deadline"))


def _report_due(conn: Connection, rec: Record, at: str) -> None:
    _notification(conn, rec, at, deadline=rec.get("due"))


# ---------------------------------------------------------------------------------------
# Alarms and refusals.

def _alarm_unmapped(conn: Connection, rec: Record, at: str) -> None:
    _upsert(conn, alarms,
            {"source": rec["source"], "alarm_id": rec["alarm_id"],
             "resource_id": rec.get("resource_id"), "first_seen_at": at, "last_seen_at": at,
             "count": 1, "unmapped": True},
            ["source", "alarm_id"],
            {"unmapped": true(),
             "resource_id": func.coalesce(alarms.c.resource_id, rec.get("resource_id"))})


def _input_rejected(conn: Connection, rec: Record, at: str, *, stage: str, shard: str) -> None:
    line = rec.get("line")
    body = _json(dict(rec))
    _upsert(conn, rejected,
            {"at": at, "stage": stage, "source_key": None if line is None else str(line),
             "reason": str(rec.get("reason") or ""), "body": body,
             "digest": _digest(stage, shard, rec)},
            ["digest"])


_HANDLERS: dict[str, Callable[[Connection, Record, str], None]] = {
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

def project(conn: Connection, record: Record, *, stage: str, shard: str) -> None:
    """Apply one CONTRACT §3 output record to the read model and keep it in `audit`.

    Idempotent: projecting the same record again changes no row. Raises KeyError when the
    record lacks its type, `at` or the id its type is keyed by.
    """
    kind = record["type"]
    at = record["at"]
    handler = _HANDLERS.get(kind)
    if handler is not None:
        handler(conn, record, at)
    elif kind == "input.rejected":
        _input_rejected(conn, record, at, stage=stage, shard=shard)
    _upsert(conn, audit,
            {"at": at, "stage": stage, "shard": shard, "type": kind,
             "fault_id": record.get("fault_id"), "work_order_id": record.get("work_order_id"),
             "body": _json(dict(record)), "digest": _digest(stage, shard, record)},
            ["digest"])


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
    stmt = _insert(conn, alarms).values(
        source=bindparam("p_source"), alarm_id=bindparam("p_alarm_id"),
        **{name: bindparam(f"p_{name}") for name in ALARM_FIELDS},
        first_seen_at=bindparam("p_at"), last_seen_at=bindparam("p_at"), count=1, unmapped=False)
    new = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "alarm_id"],
        set_={**{name: func.coalesce(new[name], alarms.c[name]) for name in ALARM_FIELDS},
              "last_seen_at": new.last_seen_at, "count": alarms.c.count + 1},
        where=or_(alarms.c.state.is_distinct_from(new.state),
                  alarms.c.event_time.is_distinct_from(new.event_time)))
    conn.execute(stmt, [{"p_source": a["source"], "p_alarm_id": a["alarm_id"], "p_at": at,
                         **{f"p_{name}": a.get(name) for name in ALARM_FIELDS}} for a, at in arrived])


def keep_refusal(conn: Connection, *, at: str, stage: str, source_key: str | None, reason: str,
                 body: str, digest: str) -> None:
    """Keep one refused input in `rejected`, once for its digest (a letter delivered again is
    not kept twice)."""
    _upsert(conn, rejected, {"at": at, "stage": stage, "source_key": source_key, "reason": reason,
                             "body": body, "digest": digest}, ["digest"])


def project_batch(conn: Connection, inputs: list[tuple[str, Record, str]],
                  records: Iterable[tuple[str, Record]], *, stage: str,
                  state: Iterable[StateUpdate] = ()) -> None:
    """The read model of one stored batch, in its transaction: the inputs kept — (kind, body,
    arrival), alarms in one statement, complaints — then the decisions, as (shard, record),
    then the state no record carries (`apply_state`)."""
    project_alarms(conn, [(body, at) for kind, body, at in inputs if kind == "alarm"])
    for kind, body, at in inputs:
        if kind == "complaint":
            project_complaint(conn, body, at)
    for shard, record in records:
        project(conn, record, stage=stage, shard=shard)
    apply_state(conn, state)


STATE_TABLES = {"faults": faults, "complaints": complaints, "work_orders": work_orders}


StateUpdate = tuple[str, Mapping[str, Any], Mapping[str, Any]]


def apply_state(conn: Connection, updates: Iterable[StateUpdate]) -> None:
    """(table, key, values) updates of what the stages know and no CONTRACT §3 record says: a
    fault's complaints and whether its customer reported it (faults), the fault a complaint
    formed or joined (complaints), a work order taken in hand by `ack` (work_orders status)."""
    for name, key, values in updates:
        table = STATE_TABLES[name]
        conn.execute(update(table).where(*(table.c[k] == v for k, v in key.items())).values(**values))


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
