"""Work orders and the dispatcher's view of a fault, and the work_order.* records."""

from __future__ import annotations

from shared.clock import fmt_time
from shared.facts import FaultFacts


class WorkOrder:
    """A ticket for one queue (CL-2 statuses, TMF621 names)."""

    __slots__ = ("work_order_id", "queue", "fault_ids", "open_faults", "incident_id", "cc",
                 "priority", "title", "rule", "status", "contact_by", "arrive_by", "created_at")

    def __init__(self, work_order_id: str, queue: str, fault_id: str, incident_id: str | None,
                 cc: tuple[str, ...], priority: str, title: str, rule: str, created_at: float) -> None:
        self.work_order_id = work_order_id
        self.queue = queue
        self.fault_ids = [fault_id]
        self.open_faults = {fault_id}
        self.incident_id = incident_id        # set for specialist orders, shared by an incident
        self.cc = cc
        self.priority = priority
        self.title = title
        self.rule = rule
        self.status = "acknowledged"          # TMF621: received; an operator `ack` takes it on
        self.contact_by: float | None = None
        self.arrive_by: float | None = None
        self.created_at = created_at

    @property
    def open(self) -> bool:
        return self.status not in ("resolved", "closed", "cancelled")

    def created(self, now: float) -> dict:
        rec = {"type": "work_order.created", "at": fmt_time(now), "work_order_id": self.work_order_id,
               "fault_ids": list(self.fault_ids), "queue": self.queue, "cc": list(self.cc),
               "priority": self.priority, "title": self.title, "rule": self.rule}
        if self.contact_by is not None:
            rec["contact_by"] = fmt_time(self.contact_by)
        if self.arrive_by is not None:
            rec["arrive_by"] = fmt_time(self.arrive_by)
        return rec

    def upgraded(self, now: float, with_arrive_by: bool) -> dict:
        rec = {"type": "work_order.upgraded", "at": fmt_time(now), "work_order_id": self.work_order_id,
               "priority": self.priority}
        if with_arrive_by and self.arrive_by is not None:
            rec["arrive_by"] = fmt_time(self.arrive_by)
        return rec

    def updated(self, now: float) -> dict:
        return {"type": "work_order.updated", "at": fmt_time(now), "work_order_id": self.work_order_id,
                "fault_ids": list(self.fault_ids)}

    def resolved(self, now: float) -> dict:
        return {"type": "work_order.resolved", "at": fmt_time(now), "work_order_id": self.work_order_id}


class DispatchFault:
    """What the dispatcher keeps of one fault: its latest facts and its orders."""

    __slots__ = ("facts", "orders", "escalations", "onsite", "acked", "confirmed", "tm6_gen")

    def __init__(self, facts: FaultFacts) -> None:
        self.facts = facts
        self.orders: dict[str, WorkOrder] = {}   # queue → the order this fault is on
        self.escalations: set[str] = set()
        self.onsite: set[str] = set()
        self.acked = False
        self.confirmed = False
        self.tm6_gen = 0

    @property
    def open(self) -> bool:
        return self.facts.ended_at is None

    @property
    def serious(self) -> bool:
        return self.facts.severity == "serious"

    def open_orders(self) -> list[WorkOrder]:
        return [wo for wo in self.orders.values() if wo.open]

    def holds(self, queue: str) -> bool:
        wo = self.orders.get(queue)
        return wo is not None and wo.open
