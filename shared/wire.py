"""Replay and action input lines (CONTRACT §3): decoded JSON → domain values or Rejected."""

from __future__ import annotations

from shared.model import (
    ATTRIBUTIONS,
    CHANNELS,
    IMPACTS,
    OPERATOR_ESCALATIONS,
    SCOPES,
    SERVICE_TYPES,
    Action,
    Complaint,
    Rejected,
    Select,
)

ACTION_KINDS = ("confirm", "attribution", "ack", "resolve", "escalate")
INPUT_KINDS = ("alarm", "raw", "complaint") + ACTION_KINDS


def _str(d: dict, name: str, where: str, *, required: bool = True) -> str | None | Rejected:
    value = d.get(name)
    if value is None:
        return Rejected(f"{where}: missing field {name}") if required else None
    if type(value) is not str or not value:
        return Rejected(f"{where}.{name}: expected a non-empty string, got {value!r}")
    return value


def _enum(d: dict, name: str, allowed: frozenset[str], where: str) -> str | Rejected:
    value = _str(d, name, where)
    if isinstance(value, Rejected):
        return value
    if value not in allowed:
        return Rejected(f"{where}.{name}: {value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def complaint_from_dict(d: object, where: str = "complaint") -> Complaint | Rejected:
    if type(d) is not dict:
        return Rejected(f"{where}: expected an object")
    values = {}
    for name, allowed in (("complaint_id", None), ("channel", CHANNELS), ("customer_id", None),
                          ("city", None), ("service_type", SERVICE_TYPES), ("scope", SCOPES)):
        value = _str(d, name, where) if allowed is None else _enum(d, name, allowed, where)
        if isinstance(value, Rejected):
            return value
        values[name] = value
    text = d.get("text", "")
    return Complaint(text=text if isinstance(text, str) else str(text), **values)


def select_from_dict(d: object, where: str = "select") -> Select | Rejected:
    if type(d) is not dict:
        return Rejected(f"{where}: expected an object such as {{\"fault_id\": \"F-000001\"}}")
    fields = {}
    for name in ("fault_id", "circuit_id", "customer_id", "service_type", "city"):
        value = _str(d, name, where, required=False)
        if isinstance(value, Rejected):
            return value
        fields[name] = value
    sel = Select(**fields)
    if sel.service_type is not None and sel.service_type not in SERVICE_TYPES:
        return Rejected(f"{where}.service_type: {sel.service_type!r} is not one of "
                        f"{', '.join(sorted(SERVICE_TYPES))}")
    if sel.fault_id or sel.circuit_id:
        return sel
    if sel.customer_id and sel.service_type:
        return sel
    if sel.city and sel.service_type and not sel.customer_id:
        return sel
    return Rejected(f"{where}: give fault_id, or circuit_id, or customer_id with service_type, "
                    "or city with service_type")


def action_from_dict(kind: str, d: dict) -> Action | Rejected:
    sel = select_from_dict(d.get("select"))
    if isinstance(sel, Rejected):
        return sel
    if kind == "confirm":
        impact = _enum(d, "impact", IMPACTS, kind)
        return impact if isinstance(impact, Rejected) else Action(kind, sel, impact=impact)
    if kind == "attribution":
        attr = _enum(d, "attribution", ATTRIBUTIONS, kind)
        return attr if isinstance(attr, Rejected) else Action(kind, sel, attribution=attr)
    if kind == "ack":
        queue = _str(d, "queue", kind)
        return queue if isinstance(queue, Rejected) else Action(kind, sel, queue=queue)
    if kind == "escalate":
        reason = _enum(d, "reason", OPERATOR_ESCALATIONS, kind)
        return reason if isinstance(reason, Rejected) else Action(kind, sel, reason=reason)
    return Action(kind, sel)
