"""What the correlator tells the dispatcher about a fault: a snapshot, never live state.

The correlator owns faults; the dispatcher owns work orders. They meet only through these
notices, so the two stages can run in different processes (the notice is plain data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import orjson

from shared.clock import in_window
from shared.inventory import Circuit, Customer, Inventory
from shared.model import Rejected
from shared.wire import show


@dataclass(frozen=True, slots=True)
class FaultFacts:
    seq: int
    fault_id: str
    incident_id: str
    kind: str                      # outage | degradation | complaint
    circuit: Circuit | None
    customer: Customer | None
    city: str                      # the A-end city, or the complaint's city
    service_type: str
    important: bool
    cause_side: str                # core | customer | unknown
    root_resource: str | None
    layer: str | None
    root_maintainer: str | None    # province | city, of the root resource
    probable_cause: str | None
    opened_at: float
    green: bool                    # came from a green-channel complaint (CP-2)
    found_by_city: bool            # ES-1: a city took the complaint, or a city-owned source raised it
    severity: str                  # general | serious
    serious_at: float | None
    ended_at: float | None
    listed: int                    # SF-6b: how many customers' complaints it lists

    @property
    def provincial(self) -> bool:
        return self.customer is not None and self.customer.level == "provincial"


# Notice kinds, in the words of the rulebook.
OPENED = "opened"
SERIOUS = "serious"
CLEARED = "cleared"
CONFIRMED = "confirmed"
ACK = "ack"
ESCALATE = "escalate"


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing the dispatcher must react to; `arg` is the queue (ack) or reason (escalate)."""

    kind: str
    facts: FaultFacts
    arg: str | None = None


# ---------------------------------------------------------------------- on the wire

# Every field but the two inventory objects, which travel as their ids.
_FACT_FIELDS = tuple(f.name for f in fields(FaultFacts) if f.name not in ("circuit", "customer"))


def facts_to_dict(f: FaultFacts) -> dict:
    d = {name: getattr(f, name) for name in _FACT_FIELDS}
    d["circuit_id"] = f.circuit.circuit_id if f.circuit else None
    d["customer_id"] = f.customer.customer_id if f.customer else None
    return d


# What each wire field must hold, read off the dataclass's annotations so the two cannot
# drift apart: "str | None" → (str, nullable). Numbers: a float field takes an int too.
_WIRE_TYPES = {"int": (int,), "str": (str,), "bool": (bool,), "float": (int, float)}
_FACT_TYPES = {
    f.name: (_WIRE_TYPES[str(f.type).split(" | ")[0]], str(f.type).endswith("| None"))
    for f in fields(FaultFacts) if f.name in _FACT_FIELDS
}
_FACT_ENUMS = {
    "kind": ("outage", "degradation", "complaint"),
    "cause_side": ("core", "customer", "unknown"),
    "severity": ("general", "serious"),
}
# Instants (Unix seconds) that must lie in the clock's window: a notice from 1e300 would
# send the dispatcher's timers walking towards it.
_FACT_TIMES = ("opened_at", "serious_at", "ended_at")
NOTICE_KINDS = (OPENED, SERIOUS, CLEARED, CONFIRMED, ACK, ESCALATE)


def check_instant(value: object, where: str) -> float | Rejected:
    """A number of Unix seconds inside the clock's window (bool is not a number here)."""
    if type(value) not in (int, float):
        return Rejected(f"{where}: expected a number of Unix seconds, got {show(value)}")
    if type(value) is int and not -10**18 < value < 10**18:   # float() of a huge int overflows
        return Rejected(f"{where}: {show(value)} is outside the clock's window")
    ts = float(value)
    if not in_window(ts):
        return Rejected(f"{where}: {show(value)} is outside the clock's window")
    return ts


def _check_facts(d: object, inventory, where: str) -> dict | Rejected:
    """The keyword arguments of FaultFacts from a wire dict, or why not."""
    if type(d) is not dict:
        return Rejected(f"{where}: expected an object, got {show(d)}")
    values: dict = {}
    for name, (types, nullable) in _FACT_TYPES.items():
        if name not in d:
            return Rejected(f"{where}: missing field {name}")
        value = d[name]
        if value is None and nullable:
            values[name] = None
            continue
        if type(value) not in types:
            want = "/".join(t.__name__ for t in types) + (" or null" if nullable else "")
            return Rejected(f"{where}.{name}: expected {want}, got {show(value)}")
        if name in _FACT_ENUMS and value not in _FACT_ENUMS[name]:
            return Rejected(f"{where}.{name}: {show(value)} is not one of {', '.join(_FACT_ENUMS[name])}")
        if name in _FACT_TIMES:
            value = check_instant(value, f"{where}.{name}")
            if isinstance(value, Rejected):
                return value
        values[name] = value
    for name, table in (("circuit_id", inventory.circuits), ("customer_id", inventory.customers)):
        ref = d.get(name)
        if ref is None or ref == "":
            values[name[:-3]] = None
        elif type(ref) is not str:
            return Rejected(f"{where}.{name}: expected a string or null, got {show(ref)}")
        elif ref not in table:
            return Rejected(f"{where}.{name}: {show(ref)} is not in the inventory")
        else:
            values[name[:-3]] = table[ref]
    return values


def facts_from_dict(d: object, inventory, where: str = "facts") -> FaultFacts | Rejected:
    """The snapshot back, with circuit and customer looked up in the receiver's inventory;
    any JSON value is accepted and refused with a reason naming the field."""
    values = _check_facts(d, inventory, where)
    if isinstance(values, Rejected):
        return values
    return FaultFacts(**values)


def notice_to_dict(n: Notice) -> dict:
    return {"kind": n.kind, "arg": n.arg, "facts": facts_to_dict(n.facts)}


def notice_from_dict(d: object, inventory, where: str = "notice") -> Notice | Rejected:
    if type(d) is not dict:
        return Rejected(f"{where}: expected an object, got {show(d)}")
    kind = d.get("kind")
    if kind is None:
        return Rejected(f"{where}: missing field kind")
    if type(kind) is not str:
        return Rejected(f"{where}.kind: expected a string, got {show(kind)}")
    if kind not in NOTICE_KINDS:
        return Rejected(f"{where}.kind: {show(kind)} is not one of {', '.join(NOTICE_KINDS)}")
    arg = d.get("arg")
    if arg is not None and type(arg) is not str:
        return Rejected(f"{where}.arg: expected a string or null, got {show(arg)}")
    facts = facts_from_dict(d.get("facts"), inventory, f"{where}.facts")
    if isinstance(facts, Rejected):
        return facts
    return Notice(kind, facts, arg)


# ---------------------------------------------------------------------- on faultline.faults

# A notice crosses from a city's correlator shard to its dispatcher shard with the ordering
# key of T-7 ((due, fault seq, §7 rank); services/drivers/city_shards.py) and the clock it was made at.
OrderKey = tuple[float, float, float]

def encode_notice(notice, key, now: float) -> bytes:
    """JSON has no infinity: the ordering key's ±inf travel as the strings "inf"/"-inf"."""
    wire_key = [x if math.isfinite(x) else str(x) for x in key]
    return orjson.dumps({"notice": notice_to_dict(notice), "key": wire_key, "now": now})


def _key_part(x: object) -> float | None:
    """One number of the ordering key: an instant or sequence number, or ±inf as a string."""
    if x == "inf" or x == "-inf":
        return float(x)
    if type(x) is int and -10**18 < x < 10**18:
        return float(x)
    if type(x) is float and math.isfinite(x):
        return x
    return None


def decode_notice(raw: bytes, inventory: Inventory) -> tuple[Notice, OrderKey, float] | Rejected:
    """A message off faultline.faults → (notice, key, now), or Rejected naming the field:
    any bytes are accepted, so a poison message can be dead-lettered and passed."""
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return Rejected(f"not valid JSON: {err}")
    if type(d) is not dict:
        return Rejected(f"expected an object with notice, key and now, got {show(d)}")
    for name in ("notice", "key", "now"):
        if name not in d:
            return Rejected(f"missing field {name}")
    notice = notice_from_dict(d["notice"], inventory)
    if isinstance(notice, Rejected):
        return notice
    wire_key = d["key"]
    if type(wire_key) is not list or len(wire_key) != 3:
        return Rejected(f"key: expected a list of 3 numbers, got {show(wire_key)}")
    key = tuple(_key_part(x) for x in wire_key)
    for i, part in enumerate(key):
        if part is None:
            return Rejected(f"key[{i}]: expected a number or \"inf\"/\"-inf\", got {show(wire_key[i])}")
    # The key's time is a due time or the clock: ±inf, or inside the window (a key dated
    # 1e300 would let the dispatcher walk its timers towards it).
    if math.isfinite(key[0]) and not in_window(key[0]):
        return Rejected(f"key[0]: {show(wire_key[0])} is outside the clock's window")
    now = check_instant(d["now"], "now")
    if isinstance(now, Rejected):
        return now
    return notice, key, now
