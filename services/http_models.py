"""Pydantic models at the HTTP edge: response bodies, and the documented request shapes.

Request bodies are *validated* by the same decoders replay uses (alarm_from_dict,
complaint_from_dict, action_from_dict, through the engine), so HTTP and replay refuse the
same inputs with the same reasons, and every refused body is kept in `rejected`. The
request models here give the OpenAPI page its schemas.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from correlator.faults import Fault
from dispatcher.engine import Dispatcher
from dispatcher.orders import WorkOrder
from shared.clock import fmt_time


class AlarmIn(BaseModel):
    """A normalized alarm (CONTRACT §2)."""

    source: str
    alarm_id: str
    resource_id: str
    probable_cause: str
    severity: Literal["critical", "major", "minor", "warning", "indeterminate"]
    state: Literal["raised", "cleared"]
    event_time: str = Field(examples=["2026-11-25T10:00:00+08:00"])
    text: str = ""


class ComplaintIn(BaseModel):
    """A complaint (CONTRACT §3 `complaint`)."""

    complaint_id: str
    channel: Literal["10086-8", "400", "direct", "account_manager"]
    customer_id: str
    city: str
    service_type: Literal["internet", "data", "voice", "gprs_apn", "sms", "circuit_lease"]
    scope: Literal["all_users", "partial"]
    text: str = ""


class ActionIn(BaseModel):
    """An operator action (CONTRACT §3), without `at`: the service stamps its arrival."""

    kind: Literal["confirm", "attribution", "ack", "resolve", "escalate"]
    select: dict[str, str] = Field(description="fault_id; or circuit_id; or customer_id + service_type "
                                               "(+ city); or city + service_type (SF-6b)")
    impact: Literal["full_block", "no_impact"] | None = None
    attribution: Literal["ours", "not_ours"] | None = None
    queue: str | None = None
    reason: Literal["ES-4", "ES-5", "ES-6", "ES-7"] | None = None


def request_schema(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


ALARMS_BODY = request_schema({"anyOf": [AlarmIn.model_json_schema(),
                                        {"type": "array", "items": AlarmIn.model_json_schema()}]})
COMPLAINT_BODY = request_schema(ComplaintIn.model_json_schema())
ACTION_BODY = request_schema(ActionIn.model_json_schema())
TMF642_BODY = request_schema({"type": "object", "description": "a TMF642 v4 Alarm (normalized by "
                                                               "`faultline ingest`)"})


class Refused(BaseModel):
    index: int
    reason: str


class IntakeResult(BaseModel):
    accepted: int
    rejected: int
    reasons: list[Refused] = []
    records: int = 0


class FaultOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fault_id: str
    incident_id: str
    kind: str
    circuit_id: str | None
    customer_id: str | None
    customer_name: str | None
    city: str
    service_type: str
    important: bool
    cause_side: str
    root_resource: str | None
    layer: str | None
    probable_cause: str | None
    opened_at: str | None
    severity: str
    serious_at: str | None
    rule: str | None
    trigger: str | None
    ended_at: str | None
    attribution: str
    customer_reported: bool
    complaints: list[str]
    work_orders: list[str]

    @classmethod
    def of(cls, f: Fault, dispatcher: Dispatcher) -> FaultOut:
        return cls(**cls.row(f, dispatcher))

    @staticmethod
    def row(f: Fault, dispatcher: Dispatcher) -> dict:
        """The same fields as a plain dict: lists encode it with orjson, skipping pydantic."""
        df = dispatcher.faults.get(f.fault_id)
        orders = sorted({wo.work_order_id for wo in df.orders.values()}) if df is not None else []
        return dict(
            fault_id=f.fault_id, incident_id=f.incident_id, kind=f.kind,
            circuit_id=f.circuit.circuit_id if f.circuit else None,
            customer_id=f.customer.customer_id if f.customer else None,
            customer_name=f.customer.name if f.customer else None,
            city=f.city, service_type=f.service_type, important=f.important,
            cause_side=f.cause_side, root_resource=f.root_resource, layer=f.layer,
            probable_cause=f.probable_cause, opened_at=_t(f.opened_at), severity=f.severity,
            serious_at=_t(f.serious_at), rule=f.rule, trigger=f.trigger, ended_at=_t(f.ended_at),
            attribution=f.attribution, customer_reported=f.customer_reported,
            complaints=list(f.complaints), work_orders=orders)


class WorkOrderOut(BaseModel):
    work_order_id: str
    queue: str
    fault_ids: list[str]
    cc: list[str]
    priority: str
    title: str
    rule: str
    status: str
    contact_by: str | None
    arrive_by: str | None
    created_at: str

    @classmethod
    def of(cls, wo: WorkOrder) -> WorkOrderOut:
        return cls(**cls.row(wo))

    @staticmethod
    def row(wo: WorkOrder) -> dict:
        return dict(work_order_id=wo.work_order_id, queue=wo.queue, fault_ids=list(wo.fault_ids),
                    cc=list(wo.cc), priority=wo.priority, title=wo.title, rule=wo.rule,
                    status=wo.status, contact_by=_t(wo.contact_by), arrive_by=_t(wo.arrive_by),
                    created_at=fmt_time(wo.created_at))


class Decision(BaseModel):
    seq: int
    record: dict


class DecisionsPage(BaseModel):
    decisions: list[Decision]
    last_seq: int = Field(description="pass as after_seq to read on")


class Status(BaseModel):
    status: str
    detail: str | None = None
    warnings: list[str] = Field(default=[], description="e.g. the holiday calendar ends soon (TM-4); "
                                                         "a warning does not make the service unready")


def _t(ts: float | None) -> str | None:
    return None if ts is None else fmt_time(ts)
