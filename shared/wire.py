"""Replay and action input lines (CONTRACT §3): decoded JSON → domain values or Rejected."""

from __future__ import annotations

from shared.model import (
    ATTRIBUTIONS,
    CHANNELS,
    IMPACTS,
    MAX_CITY,
    MAX_ID,
    MAX_NAME,
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


# The reason of an input refused because handling it raised (a case no check foresaw).
INTERNAL = "internal error while handling this input"


def describe(err: BaseException, limit: int = 500) -> str:
    """`Type: message`, the message cut short (it may quote a whole hostile input); for a
    database error, the driver's own words (`orig`), not the SQL statement around them."""
    err = getattr(err, "orig", None) or err
    text = str(err)
    return f"{type(err).__name__}: {text if len(text) <= limit else text[:limit] + '…'}"


def show(value: object) -> str:
    """A short picture of a JSON value for a reason. Never repr() of an arbitrary value:
    a list nested 1,000 deep raises RecursionError, an int of 5,000 digits ValueError,
    and a 10 MB string would make a 10 MB reason."""
    t = type(value)
    if t is str:
        return repr(value) if len(value) <= 64 else repr(value[:64]) + "…"
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value) if -10**18 < value < 10**18 else "a very large integer"
    if t is float:
        return repr(value)
    if t is list:
        return "a list"
    if t is dict:
        return "an object"
    return f"a {t.__name__}"


def _str(d: dict, name: str, where: str, *, required: bool = True,
         longest: int = MAX_NAME) -> str | None | Rejected:
    value = d.get(name)
    if value is None:
        return Rejected(f"{where}: missing field {name}") if required else None
    if type(value) is not str or not value:
        return Rejected(f"{where}.{name}: expected a non-empty string, got {show(value)}")
    return _storable(value, name, where, longest)


def _storable(value: str, name: str, where: str, longest: int | None) -> str | Rejected:
    """What a database column can hold: not over its length, and no NUL (PostgreSQL text)."""
    if longest is not None and len(value) > longest:
        return Rejected(f"{where}.{name}: longer than {longest} characters ({len(value):,})")
    if "\x00" in value:
        return Rejected(f"{where}.{name}: holds a NUL character (\\u0000), which cannot be stored")
    return value


def text_field(d: dict, name: str, where: str) -> str | Rejected:
    """An optional free-text field: a string, or absent/null for none."""
    value = d.get(name)
    if value is None:
        return ""
    if type(value) is not str:
        return Rejected(f"{where}.{name}: expected a string, got {show(value)}")
    return _storable(value, name, where, None)


def _enum(d: dict, name: str, allowed: frozenset[str], where: str) -> str | Rejected:
    value = _str(d, name, where)
    if isinstance(value, Rejected):
        return value
    if value not in allowed:
        return Rejected(f"{where}.{name}: {show(value)} is not one of {', '.join(sorted(allowed))}")
    return value


def complaint_from_dict(d: object, where: str = "complaint") -> Complaint | Rejected:
    if type(d) is not dict:
        return Rejected(f"{where}: expected an object, got {show(d)}")
    values = {}
    for name, allowed in (("complaint_id", MAX_ID), ("channel", CHANNELS), ("customer_id", MAX_ID),
                          ("city", MAX_CITY), ("service_type", SERVICE_TYPES), ("scope", SCOPES)):
        value = (_str(d, name, where, longest=allowed) if type(allowed) is int
                 else _enum(d, name, allowed, where))
        if isinstance(value, Rejected):
            return value
        values[name] = value
    text = text_field(d, "text", where)
    if isinstance(text, Rejected):
        return text
    return Complaint(text=text, **values)


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
        return Rejected(f"{where}.service_type: {show(sel.service_type)} is not one of "
                        f"{', '.join(sorted(SERVICE_TYPES))}")
    if sel.fault_id or sel.circuit_id:
        return sel
    if sel.customer_id and sel.service_type:
        return sel
    if sel.city and sel.service_type and not sel.customer_id:
        return sel
    return Rejected(f"{where}: give fault_id, or circuit_id, or customer_id with service_type, "
                    "or city with service_type")


def kind_refusal(kind: object, kinds: tuple[str, ...]) -> str | None:
    """Why `kind` is not one of `kinds` (the one wording of every input decoder), or None."""
    if kind is None:
        return "missing field kind"
    if type(kind) is not str:
        return f"kind: expected a string, got {show(kind)}"
    if kind not in kinds:
        return f"kind: {show(kind)} is not one of {', '.join(kinds)}"
    return None


def action_from_dict(kind: object, d: object) -> Action | Rejected:
    """An operator action of `kind` from its input object (the §3 line or the HTTP body)."""
    refused = kind_refusal(kind, ACTION_KINDS)
    if refused is not None:
        return Rejected(refused)
    if type(d) is not dict:
        return Rejected(f"{kind}: expected an object, got {show(d)}")
    if d.get("select") is None:
        return Rejected(f"{kind}: missing field select")
    sel = select_from_dict(d["select"])
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
