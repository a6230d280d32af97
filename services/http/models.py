"""Pydantic models at the HTTP edge: response bodies, and the documented request shapes.

Request bodies are *validated* by the same decoders replay uses (alarm_from_dict,
complaint_from_dict, action_from_dict), so HTTP and replay refuse the same inputs with the
same reasons. The request models here give the OpenAPI page its schemas.

Response bodies of services/http/app.py are built from read-model rows (`FaultOut.from_row`,
`WorkOrderOut.from_row`, `trouble_ticket`) as plain dicts encoded by orjson; the models
document them. `FaultOut.of`/`row` and `WorkOrderOut.of`/`row` read the embedded engine's
objects for services/http_api.py only, and go with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import orjson
from pydantic import BaseModel, ConfigDict, Field

from services.http import examples
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

    model_config = ConfigDict(json_schema_extra={"examples": [examples.COMPLAINT]})

    complaint_id: str
    channel: Literal["10086-8", "400", "direct", "account_manager"]
    customer_id: str
    city: str
    service_type: Literal["internet", "data", "voice", "gprs_apn", "sms", "circuit_lease"]
    scope: Literal["all_users", "partial"]
    text: str = ""


class ActionIn(BaseModel):
    """An operator action (CONTRACT §3), without `at`: the service stamps its arrival."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.ACTION]})

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
IMPORT_BODY = request_schema({
    "type": "object", "required": ["mapping", "rows"],
    "properties": {"mapping": {"type": "string", "description": "an export mapping's name"},
                   "source": {"type": "string", "description": "the NMS the rows come from"},
                   "rows": {"type": "array", "maxItems": 1000, "items": {"type": "object"}}},
    "example": {"mapping": "sdh-otn-export", "source": "u2000-gz", "rows": [
        {"Log Serial Number": "884213", "Severity": "Critical", "Name": "R_LOS", "Alarm Source": "GZ-OTN-A",
         "Location Info": "1-3-1", "Occurrence Time": "2026-11-25 10:00:00", "Clearance Time": ""}]}})
TMF642_BODY = request_schema({"type": "object", "description": "a TMF642 v4 Alarm (normalized by "
                                                               "`faultline ingest`)"})


class Problem(BaseModel):
    """An answer that refuses a request: 400, 404, 408, 413, 415 (what was wrong, in `detail`)."""

    detail: str


class QueryProblemItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class QueryProblem(BaseModel):
    """A request parameter that is not usable (FastAPI's validation answer)."""

    detail: list[QueryProblemItem]


class Refused(BaseModel):
    index: int
    reason: str


class IntakeResult(BaseModel):
    accepted: int
    rejected: int
    reasons: list[Refused] = []
    records: int = 0


class IntakeAnswer(IntakeResult):
    """What intake answers (services/http/app.py): the embedded app's fields and the
    production api's `refused`, plus each input's id and how many are still undecided."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.INTAKE_ANSWER]})

    accepted: int = Field(description="inputs taken (published) and not refused")
    rejected: int = Field(description="inputs refused: by validation, or, when awaited, by the stages")
    records: int | None = Field(default=None, description="decision records the decided inputs made "
                                                          "(when `wait_s` > 0; else null, as when log "
                                                          "retention let go of a decided input's count)")
    refused: list[str] = Field(default=[], description="the reasons of `reasons`, in order")
    input_ids: list[str | None] = Field(default=[], description="per input, in request order: its id "
                                        "(GET /inputs/{input_id}); null when refused before publishing")
    pending: int = Field(default=0, description="accepted inputs whose outcome is not known yet")
    detail: str | None = Field(default=None, description="the reason, when one input is refused (422)")


class InputOutcome(BaseModel):
    """What became of one input published by intake (services/http/app.py, CL-4)."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.INPUT_OUTCOME]})

    input_id: str
    status: Literal["pending", "accepted", "refused"]
    reason: str | None = None
    records: int | None = Field(default=None, description="decision records it made (null while pending, "
                                                          "or when `pruned`)")
    pruned: bool = Field(default=False, description=(
        "present and true when log retention (FAULTLINE_LOG_RETENTION) has let go of what it was "
        "handled with: it was handled (the status holds), how many records it made is no longer "
        "known (`records` is null)"))


class FaultOut(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [examples.FAULT]})

    fault_id: str
    incident_id: str | None
    kind: str | None
    circuit_id: str | None
    customer_id: str | None
    customer_name: str | None
    city: str | None
    service_type: str | None
    important: bool | None
    cause_side: str | None
    root_resource: str | None
    layer: str | None
    probable_cause: str | None
    opened_at: str | None
    severity: str | None
    serious_at: str | None
    rule: str | None
    trigger: str | None
    ended_at: str | None
    attribution: str
    customer_reported: bool
    complaints: list[str]
    work_orders: list[str]
    duration_s: int | None = None
    updated_at: str | None = Field(default=None, description="`at` of the latest record about it")

    @staticmethod
    def from_row(row: Mapping[str, Any], work_orders: list[str], customer_name: str | None) -> dict:
        """A `faults` row of the read model as the body, with the fault's work orders (those
        whose fault_ids name it) and the customer's name."""
        d = {name: row.get(name) for name in _FAULT_COLUMNS}
        d["attribution"] = d["attribution"] or "ours"      # the correlator's own default
        d.update(customer_name=customer_name, work_orders=work_orders,
                 complaints=_json_list(row.get("complaints")),
                 customer_reported=bool(row.get("customer_reported")))
        return d


class FaultDetail(BaseModel):
    """GET /faults/{id}/detail (services/http/fault_detail.py): everything kept of a fault (CL-3)."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.FAULT_DETAIL]})

    fault: FaultOut
    customer: dict[str, Any] | None
    circuit: dict[str, Any] | None
    alarms: list[dict[str, Any]]
    alarms_more: bool
    complaints: list[dict[str, Any]]
    work_orders: list[WorkOrderOut]
    escalations: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    timers: list[dict[str, Any]]
    incident: dict[str, Any] | None


class WorkOrderOut(BaseModel):

    model_config = ConfigDict(json_schema_extra={"examples": [examples.WORK_ORDER]})
    work_order_id: str
    queue: str | None
    fault_ids: list[str]
    cc: list[str]
    priority: str | None
    title: str | None
    rule: str | None
    status: str
    contact_by: str | None
    arrive_by: str | None
    created_at: str | None
    updated_at: str | None = None
    resolved_at: str | None = None

    @staticmethod
    def from_row(row: Mapping[str, Any]) -> dict:
        """A `work_orders` row of the read model as the body (fault_ids and cc decoded)."""
        d = {name: row.get(name) for name in _ORDER_COLUMNS}
        for name in ("fault_ids", "cc"):
            d[name] = _json_list(d[name])
        return d


class Decision(BaseModel):
    seq: int
    record: dict


class DecisionsPage(BaseModel):

    model_config = ConfigDict(json_schema_extra={"examples": [examples.DECISIONS]})
    decisions: list[Decision]
    last_seq: int = Field(description="pass as after_seq to read on")


class AuditChange(BaseModel):
    id: int
    at: float = Field(description="Unix seconds")
    token_id: int | None = Field(description="null: the token command")
    actor: str
    role: str
    city: str | None
    action: str = Field(description='e.g. "POST /actions", "token create"')
    inputs: int
    detail: dict[str, Any] | None


class AuditPage(BaseModel):

    model_config = ConfigDict(json_schema_extra={"examples": [examples.AUDIT]})
    changes: list[AuditChange]
    last_id: int = Field(description="pass as after_id to read on")


class TroubleTicketChannel(BaseModel):
    name: str | None


class RelatedEntity(BaseModel):
    id: str
    role: str
    referredType: str | None = Field(default=None, alias="@referredType")
    href: str | None = None
    name: str | None = None


class RelatedParty(BaseModel):
    id: str
    role: str
    referredType: str | None = Field(default=None, alias="@referredType")
    name: str | None = None


class Note(BaseModel):
    id: str
    author: str
    date: str
    text: str


class StatusChange(BaseModel):
    changeDate: str | None
    status: str
    changeReason: str | None = None


class TroubleTicket(BaseModel):
    """A work order as a TMF621 v4 TroubleTicket (status: the CL-2 lifecycle). `ticketType` is
    the rule that made it (RT-, CP-, ES-, TM-); `severity` the worst of its faults' (serious,
    general); `relatedParty` its queue (role owner), cc queues and customers;
    `relatedEntity` its faults and circuits; `statusChange` the creation (acknowledged),
    the changes operators made through the API, and the rules' resolution. Only `id` is always
    there: `fields=` answers the attributes it names (with id, href, @type)."""

    model_config = ConfigDict(json_schema_extra={"examples": [examples.TICKET]})

    id: str
    href: str | None = None
    type_: str = Field(alias="@type", default="TroubleTicket")
    name: str | None = None
    description: str | None = None
    severity: str | None = None
    priority: str | None = None
    ticketType: str | None = None
    status: str | None = None
    statusChangeDate: str | None = None
    statusChangeReason: str | None = None
    statusChange: list[StatusChange] = []
    creationDate: str | None = None
    lastUpdate: str | None = None
    resolutionDate: str | None = None
    expectedResolutionDate: str | None = Field(default=None, description="arrive_by (TM-4) or "
                                               "contact_by (TM-5) when the order has one")
    channel: TroubleTicketChannel | None = None
    note: list[Note] = []
    relatedEntity: list[RelatedEntity] = []
    relatedParty: list[RelatedParty] = []


def trouble_ticket(order: Mapping[str, Any], *, base: str = "", extras: Mapping[str, Any] | None = None,
                   names: Mapping[str, str] | None = None) -> dict:
    """A body of WorkOrderOut.from_row as a TMF621 TroubleTicket. `base`: the absolute root of
    hrefs; `extras`: reads.ticket_extras' entry for it (notes, operators' changes, faults);
    `names`: customer id → name."""
    extras = extras or {}
    notes, changes, fault_rows = extras.get("notes", []), extras.get("changes", []), extras.get("faults", {})
    wo, rule = order["work_order_id"], order["rule"]
    history = [{"changeDate": order["created_at"], "status": "acknowledged",
                "changeReason": f"created by {rule}" if rule else "created"}]
    history += [{k: c[k] for k in ("changeDate", "status", "changeReason")} for c in changes]
    if order["resolved_at"] and not any(c["status"] == "resolved" for c in changes):
        history.append({"changeDate": order["resolved_at"], "status": "resolved",
                        "changeReason": "its faults ended (CL-2)"})
    history.sort(key=lambda c: c["changeDate"] or "")
    last = history[-1]
    updates = [t for t in (order["updated_at"], last["changeDate"], *(n["date"] for n in notes)) if t]
    severities = {r.get("severity") for r in fault_rows.values()}
    severity = "serious" if "serious" in severities else ("general" if fault_rows else None)
    names = names or {}
    entities = [{"id": f, "role": "fault", "@referredType": "Fault",
                 **({"href": f"{base}/faults/{quote(f, safe='')}"} if base else {})}
                for f in order["fault_ids"]]
    circuits = dict.fromkeys(r["circuit_id"] for r in fault_rows.values() if r.get("circuit_id"))
    entities += [{"id": c, "role": "circuit", "@referredType": "Circuit"} for c in circuits]
    queue = order["queue"]
    parties = [{"id": queue, "role": "owner", "@referredType": "Queue", "name": queue}] if queue else []
    parties += [{"id": q, "role": "cc", "@referredType": "Queue", "name": q} for q in order["cc"]]
    customers = dict.fromkeys(r["customer_id"] for r in fault_rows.values() if r.get("customer_id"))
    parties += [{"id": c, "role": "customer", "@referredType": "Customer", "name": names.get(c)}
                for c in customers]
    title = order["title"]
    description = f"{title} (faults {', '.join(order['fault_ids'])})" if title else None
    return {"id": wo, "href": f"{base}/tmf-api/troubleTicket/v4/troubleTicket/{quote(wo, safe='')}",
            "@type": "TroubleTicket", "name": title, "description": description, "severity": severity,
            "priority": order["priority"], "ticketType": rule, "status": order["status"],
            "statusChangeDate": last["changeDate"], "statusChangeReason": last["changeReason"],
            "statusChange": history, "creationDate": order["created_at"],
            "lastUpdate": max(updates) if updates else None, "resolutionDate": order["resolved_at"],
            "expectedResolutionDate": order["arrive_by"] or order["contact_by"],
            "channel": {"name": queue}, "note": [{k: n[k] for k in ("id", "author", "date", "text")}
                                                 for n in notes],
            "relatedEntity": entities, "relatedParty": parties}


class Status(BaseModel):

    model_config = ConfigDict(json_schema_extra={"examples": [examples.STATUS]})
    status: str
    detail: str | None = None
    problems: list[str] = Field(default=[], description="what makes the service unready")
    warnings: list[str] = Field(default=[], description="e.g. the holiday calendar ends soon (TM-4); "
                                                         "a warning does not make the service unready")


def _t(ts: float | None) -> str | None:
    return None if ts is None else fmt_time(ts)


_FAULT_COLUMNS = ("fault_id", "incident_id", "kind", "circuit_id", "customer_id", "city", "service_type",
                  "important", "cause_side", "root_resource", "layer", "probable_cause", "opened_at",
                  "severity", "serious_at", "rule", "trigger", "ended_at", "attribution", "duration_s",
                  "updated_at")
_ORDER_COLUMNS = ("work_order_id", "queue", "fault_ids", "cc", "priority", "title", "rule", "status",
                  "contact_by", "arrive_by", "created_at", "updated_at", "resolved_at")


def _json_list(value: Any) -> list:
    """A JSON list column (stored as text by shared.db.projection) as a list."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
    return list(value) if isinstance(value, list) else []
