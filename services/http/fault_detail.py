"""Everything the read model keeps about one fault (RULES.md CL-3): the raw material of the
48-hour technical fault report (TM-7, dispatcher/report.py).

`fault_detail(conn, fault_id, inventory)` reads the tables of `shared.db.models` that
`shared.db.projection` fills and returns one plain dict (str keys, JSON-able values), or
None when the read model holds no such fault:

    {
      "fault":         FaultOut body (services/http/models.py; what GET /faults/{id} gives),
      "customer":      {customer_id, name, level, grade, hq_city, important} from the inventory;
                       {customer_id} when the inventory does not know it; null: no customer,
      "circuit":       {circuit_id, customer_id, service_type, a_city, z_city, span,
                        maintenance_transferred, paths, resources: [{resource_id, layer, city,
                        maintainer}]} from the inventory; {circuit_id} when unknown; null: none,
      "alarms":        [{source, alarm_id, resource_id, probable_cause, severity, state,
                         event_time, text, first_seen_at, last_seen_at, count, unmapped}],
                       by event_time, at most ALARM_LIMIT,
      "alarms_more":   true when more alarms matched than ALARM_LIMIT,
      "complaints":    [{complaint_id, customer_id, city, service_type, channel, scope, text,
                         received_at, fault_id}], by received_at,
      "work_orders":   [WorkOrderOut body], by created_at,
      "escalations":   [{reason, to, at}], by at,
      "notifications": [{type, at, stage, rule, queue, target, recipients, text, deadline, due}]
                       by at (the CONTRACT §3 fields of sms, phone.notify, onsite.required,
                       deadline.missed and report.due; null where the type has none),
      "timers":        [{kind, due, stage, shard}] the engine's pending timers of the fault,
                       due as ISO-8601 +08:00, by due,
      "incident":      {incident_id, root_resource, first_opened_at, fault_count, faults:
                        [{fault_id, circuit_id, customer_id, customer_name, city, service_type,
                          severity, opened_at, ended_at}]} when the fault has an incident_id
                       (null otherwise; its faults at most ALARM_LIMIT, by opened_at),
    }

The link from alarms to faults. The read model keeps no such link (no record names the
alarms behind a fault). The alarms of a fault are taken to be the `alarms` rows whose
resource_id is the fault's root_resource or a resource on a path of its circuit (from the
inventory) and whose life overlaps the fault's [opened_at, ended_at] (open-ended while the
fault is open): it began at or before the fault's end (event_time or first_seen_at) and was
still active, or ended at or after the fault opened (event_time or last_seen_at). Times are
compared as text, which is the time order for the +08:00 strings the service writes; an
alarm whose sender used another offset may be misplaced by that offset. A complaint fault
without a circuit or root has no alarms.

Works on SQLite and PostgreSQL (the only dialect-specific SQL is that of
services/http/reads.py `orders_of_faults`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.http.models import WorkOrderOut, _json_list
from services.http.reads import _chunks, _mapping, fault_one
from shared.clock import fmt_time
from shared.db.models import (
    alarms,
    complaints,
    escalations,
    faults,
    incidents,
    notifications,
    timers,
    work_orders,
)
from shared.inventory import Inventory

__all__ = ["ALARM_LIMIT", "fault_detail"]

#: The most alarms (and incident faults) one detail lists.
ALARM_LIMIT = 500

_ALARM_COLUMNS = ("source", "alarm_id", "resource_id", "probable_cause", "severity", "state",
                  "event_time", "text", "first_seen_at", "last_seen_at", "count", "unmapped")
_COMPLAINT_COLUMNS = ("complaint_id", "customer_id", "city", "service_type", "channel", "scope",
                      "text", "received_at", "fault_id")


class _CustomerNames(Mapping[str, str]):
    """customer id → name, read from the inventory on demand (no dict of every customer)."""

    def __init__(self, inventory: Inventory | None) -> None:
        self._customers = inventory.customers if inventory is not None else {}

    def __getitem__(self, key: str) -> str:
        return self._customers[key].name

    def __iter__(self) -> Iterator[str]:
        return iter(self._customers)

    def __len__(self) -> int:
        return len(self._customers)


async def fault_detail(conn: AsyncConnection, fault_id: str, inventory: Inventory | None) -> dict | None:
    """Everything the read model keeps about one fault (see the module for the shape and for
    how its alarms are found); None when there is no such fault."""
    fault = await fault_one(conn, fault_id, _CustomerNames(inventory))
    if fault is None:
        return None
    circuit = inventory.circuits.get(fault["circuit_id"]) if inventory and fault["circuit_id"] else None
    alarm_rows, more = await _alarms(conn, fault, _resources_of(fault, circuit))
    return {
        "fault": fault,
        "customer": _customer(fault["customer_id"], inventory),
        "circuit": _circuit(fault["circuit_id"], inventory),
        "alarms": alarm_rows,
        "alarms_more": more,
        "complaints": await _complaints(conn, fault_id, fault["complaints"]),
        "work_orders": await _work_orders(conn, fault["work_orders"]),
        "escalations": await _escalations(conn, fault_id),
        "notifications": await _notifications(conn, fault_id),
        "timers": await _timers(conn, fault_id),
        "incident": await _incident(conn, fault["incident_id"], inventory),
    }


# ---------------------------------------------------------------------- the inventory

def _customer(customer_id: str | None, inventory: Inventory | None) -> dict | None:
    if customer_id is None:
        return None
    c = inventory.customers.get(customer_id) if inventory is not None else None
    if c is None:
        return {"customer_id": customer_id}
    return {"customer_id": c.customer_id, "name": c.name, "level": c.level, "grade": c.grade,
            "hq_city": c.hq_city, "important": c.important}


def _circuit(circuit_id: str | None, inventory: Inventory | None) -> dict | None:
    if circuit_id is None:
        return None
    c = inventory.circuits.get(circuit_id) if inventory is not None else None
    if c is None:
        return {"circuit_id": circuit_id}
    resources = []
    for rid in dict.fromkeys(r for path in c.paths for r in path):
        r = inventory.resources.get(rid)
        resources.append({"resource_id": rid, "layer": r.layer if r else None,
                          "city": r.city if r else None, "maintainer": r.maintainer if r else None})
    return {"circuit_id": c.circuit_id, "customer_id": c.customer_id, "service_type": c.service_type,
            "a_city": c.a_city, "z_city": c.z_city, "span": c.span,
            "maintenance_transferred": c.maintenance_transferred,
            "paths": [list(path) for path in c.paths], "resources": resources}


def _resources_of(fault: Mapping[str, Any], circuit) -> list[str]:
    """The root resource, then the resources on the circuit's paths (once each)."""
    ids = [fault["root_resource"]] if fault["root_resource"] else []
    if circuit is not None:
        ids.extend(r for path in circuit.paths for r in path)
    return list(dict.fromkeys(ids))


# ---------------------------------------------------------------------- the read model

async def _alarms(conn: AsyncConnection, fault: Mapping[str, Any],
                  resource_ids: Sequence[str]) -> tuple[list[dict], bool]:
    """The alarms on these resources whose life overlaps the fault's (see the module)."""
    if not resource_ids:
        return [], False
    a = alarms.c
    opened, ended = fault["opened_at"], fault["ended_at"]
    when = []
    if ended is not None:           # began at or before the fault's end
        when.append(or_(a.event_time <= ended, a.first_seen_at <= ended))
    if opened is not None:          # still active, or ended at or after the fault opened
        when.append(or_(a.state.is_(None), a.state != "cleared",
                        a.event_time >= opened, a.last_seen_at >= opened))
    found: list[dict] = []
    for chunk in _chunks(list(resource_ids)):
        query = (select(*(a[name] for name in _ALARM_COLUMNS))
                 .where(a.resource_id.in_(list(chunk)), *when)
                 .order_by(a.event_time.nulls_last(), a.source, a.alarm_id)
                 .limit(ALARM_LIMIT + 1))
        found.extend(_mapping(r) for r in await conn.execute(query))
    found.sort(key=lambda r: (r["event_time"] is None, r["event_time"] or "", r["source"], r["alarm_id"]))
    for row in found:
        row["unmapped"] = bool(row["unmapped"])
    return found[:ALARM_LIMIT], len(found) > ALARM_LIMIT


async def _complaints(conn: AsyncConnection, fault_id: str, listed: Sequence[str]) -> list[dict]:
    """The complaints the fault lists, and those linked to it (formed or joined)."""
    c = complaints.c
    columns = [c[name] for name in _COMPLAINT_COLUMNS]
    rows: dict[str, dict] = {}
    for r in await conn.execute(select(*columns).where(c.fault_id == fault_id)):
        rows[r.complaint_id] = _mapping(r)
    for chunk in _chunks([i for i in dict.fromkeys(listed) if i not in rows]):
        for r in await conn.execute(select(*columns).where(c.complaint_id.in_(list(chunk)))):
            rows[r.complaint_id] = _mapping(r)
    return sorted(rows.values(), key=lambda r: (r["received_at"] is None, r["received_at"] or "",
                                                r["complaint_id"]))


async def _work_orders(conn: AsyncConnection, ids: Sequence[str]) -> list[dict]:
    out: list[dict] = []
    for chunk in _chunks(list(ids)):
        query = select(work_orders).where(work_orders.c.work_order_id.in_(list(chunk)))
        out.extend(WorkOrderOut.from_row(_mapping(r)) for r in await conn.execute(query))
    return sorted(out, key=lambda o: (o["created_at"] is None, o["created_at"] or "", o["work_order_id"]))


async def _escalations(conn: AsyncConnection, fault_id: str) -> list[dict]:
    e = escalations.c
    query = (select(e.reason, e.to_queue, e.at).where(e.fault_id == fault_id)
             .order_by(e.at.nulls_last(), e.reason))
    return [{"reason": r.reason, "to": r.to_queue, "at": r.at} for r in await conn.execute(query)]


def _notification(row: Mapping[str, Any]) -> dict:
    """A `notifications` row with its CONTRACT §3 field names (null where its type has none)."""
    kind = row["type"]
    stage_or_rule = row["stage_or_rule"] or None
    queue_or_target = row["queue_or_target"] or None
    return {
        "type": kind, "at": row["at"],
        "stage": stage_or_rule if kind == "sms" else None,
        "rule": stage_or_rule if kind in ("onsite.required", "deadline.missed") else None,
        "queue": queue_or_target if kind == "onsite.required" else None,
        "target": queue_or_target if kind == "phone.notify" else None,
        "recipients": _json_list(row["recipients"]),
        "text": row["text"],
        "deadline": row["deadline"] if kind != "report.due" else None,
        "due": row["deadline"] if kind == "report.due" else None,
    }


async def _notifications(conn: AsyncConnection, fault_id: str) -> list[dict]:
    n = notifications.c
    query = (select(n.type, n.stage_or_rule, n.queue_or_target, n.recipients, n.text, n.deadline, n.at)
             .where(n.fault_id == fault_id).order_by(n.at, n.id))
    return [_notification(_mapping(r)) for r in await conn.execute(query)]


async def _timers(conn: AsyncConnection, fault_id: str) -> list[dict]:
    t = timers.c
    query = (select(t.kind, t.due, t.stage, t.shard).where(t.fault_id == fault_id)
             .order_by(t.due, t.kind, t.stage, t.shard))
    return [{"kind": r.kind, "due": fmt_time(r.due), "stage": r.stage, "shard": r.shard}
            for r in await conn.execute(query)]


async def _incident(conn: AsyncConnection, incident_id: str | None,
                    inventory: Inventory | None) -> dict | None:
    if incident_id is None:
        return None
    i = incidents.c
    row = (await conn.execute(select(i.incident_id, i.root_resource, i.first_opened_at, i.fault_count)
                              .where(i.incident_id == incident_id))).first()
    body = _mapping(row) if row is not None else {"incident_id": incident_id, "root_resource": None,
                                                   "first_opened_at": None, "fault_count": None}
    f = faults.c
    query = (select(f.fault_id, f.circuit_id, f.customer_id, f.city, f.service_type, f.severity,
                    f.opened_at, f.ended_at)
             .where(f.incident_id == incident_id)
             .order_by(f.opened_at.nulls_last(), f.fault_id).limit(ALARM_LIMIT))
    names = _CustomerNames(inventory)
    members = []
    for r in await conn.execute(query):
        member = _mapping(r)
        member["customer_name"] = names.get(member["customer_id"]) if member["customer_id"] else None
        members.append(member)
    body["faults"] = members
    return body
