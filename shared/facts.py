"""What the correlator tells the dispatcher about a fault: a snapshot, never live state.

The correlator owns faults; the dispatcher owns work orders. They meet only through these
notices, so the two stages can run in different processes (the notice is plain data).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from shared.inventory import Circuit, Customer


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


def facts_from_dict(d: dict, inventory) -> FaultFacts:
    """The snapshot back, with circuit and customer looked up in the receiver's inventory."""
    values = {name: d[name] for name in _FACT_FIELDS}
    circuit = inventory.circuits[d["circuit_id"]] if d.get("circuit_id") else None
    customer = inventory.customers[d["customer_id"]] if d.get("customer_id") else None
    return FaultFacts(circuit=circuit, customer=customer, **values)


def notice_to_dict(n: Notice) -> dict:
    return {"kind": n.kind, "arg": n.arg, "facts": facts_to_dict(n.facts)}


def notice_from_dict(d: dict, inventory) -> Notice:
    return Notice(d["kind"], facts_from_dict(d["facts"], inventory), d.get("arg"))
