"""Which shard owns an input (issue 3: keyed so that one city's events stay in order).

The unit of correlation state is the circuit, and a circuit belongs to its **A-end city**:
the city that holds its customer's access and that RULES.md routes it by (`city.C.*`). A
cross-city or cross-province circuit therefore lives in exactly one shard, so its paths,
timers and faults are never split.

A shard is a **correlation group** of cities (`Inventory.group_of`): cities joined by a
resource that lies under circuits of both as A-end cities. A root under such a resource makes
one incident across both cities (AL-6) with one specialist order (RT-13), and the order's
records depend on every member fault's severity and end (RT-12 upgrades it once, when the
first member turns serious, which may be a `confirm` naming the other city's fault). Only a
shard that holds every member's circuits decides that as replay does, so the cities of a
group share one correlator and one dispatcher; a city joined to none is a group of its own.
The group is named after its first city (sorted), and so are its fault and order ids
(`F-GZ-000123` may be an SZ circuit's fault when GZ and SZ share a trunk).

An alarm goes to every group owning a circuit whose path holds the resource (each correlating
only its own circuits). An operator action goes to the group named in its fault id, owning its
circuit, or holding its city's SF-6b fault. Where the answer depends on which faults are open —
a select by customer and service, whose faults may sit in several groups, and a complaint
(its id counts once whatever the city; SV-5 joins the earliest open fault of the customer's
service in the city, maybe on another group's cross-city circuit) — the router asks every
group that may hold one at the input's place in the order and sends it to the one the answers
settle on (Ask, settle; services/drivers/city_router.py).

The cost is scale-out: provincial trunks and core gateways join most of a province's cities
into one group, and a group is one correlator (README, Performance, has its ceiling). The way
past it, if a province needs more than one correlator's rate, is a channel between city
shards with a deterministic merge of the members' notices (per-city watermarks on the router's
global order; replay's order within one input is the inventory order of the circuits; fault
ordinals from (input, circuit) instead of per-shard counters), which is a runtime change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from correlator.faults import Fault
from correlator.operator import not_one_match
from shared.inventory import Inventory
from shared.model import Action, Complaint, Rejected, Select

UNMAPPED = "-"          # the shard that reports alarms on resources not in the inventory (AL-7)


def city_shard(inventory: Inventory, city: str) -> str:
    """The shard of a city: its correlation group, or UNMAPPED for a city the inventory does
    not name."""
    return inventory.group_of(city) if city in inventory.cities else UNMAPPED


def all_shards(inventory: Inventory) -> list[str]:
    """Every shard there can be: the inventory's groups and UNMAPPED. Inputs never make
    another (a complaint's or an operator's city the inventory does not name goes to
    UNMAPPED), so a hostile feed cannot grow the shards without bound."""
    return sorted({inventory.group_of(c) for c in inventory.cities}) + [UNMAPPED]


def shard_cities(inventory: Inventory, shard: str) -> frozenset[str]:
    """The A-end cities whose circuits a shard owns (none for UNMAPPED)."""
    return frozenset(c for c in inventory.cities if inventory.group_of(c) == shard)


def alarm_shards(inventory: Inventory, resource_id: str) -> list[str]:
    """Every shard that must see an alarm on this resource, in a stable order."""
    return list(inventory.groups_on(resource_id) or (UNMAPPED,))


def complaint_shard(inventory: Inventory, customer_id: str, city: str, service_type: str) -> str:
    """SV-5 looks for the customer's circuits with an end in the complaint's city. A city the
    inventory does not name has none: UNMAPPED keeps such complaints (and their SF-6b counts
    per city) together, as one correlator would."""
    if city not in inventory.cities:
        return UNMAPPED
    owners = [c.a_city for c in inventory.circuits_of(customer_id)
              if c.service_type == service_type and city in (c.a_city, c.z_city)]
    if not owners or city in owners:
        return inventory.group_of(city)
    return inventory.group_of(owners[0])


def fault_shard(fault_id: str) -> str | None:
    """The shard in a sharded fault id: `F-GZ-000123` → GZ, `F---000007` → UNMAPPED; None
    for an unsharded id."""
    if not fault_id.startswith("F-"):
        return None
    return fault_id[2:fault_id.rfind("-")] or None


@dataclass(frozen=True, slots=True)
class Ask:
    """An input whose effect depends on state held by several shards, so they are asked at
    its place in the input order before it goes to one of them (`settle`): an operator
    action whose select may match faults in any of them, or a complaint (a complaint id
    counts once whatever its city, and SV-5 joins the earliest open fault of the customer's
    service in the city, which may be on a circuit of another city's shard)."""

    shards: tuple[str, ...]


def complaint_route(inventory: Inventory, complaint: Complaint) -> list[str] | Ask:
    """A complaint of a customer the inventory knows is asked of every shard; any other goes
    to its city's shard, which refuses it as replay does."""
    if complaint.customer_id not in inventory.customers:
        return [complaint_shard(inventory, complaint.customer_id, complaint.city, complaint.service_type)]
    return Ask(tuple(all_shards(inventory)))


def select_shards(inventory: Inventory, sel: Select) -> list[str] | Ask | Rejected:
    """Where the open faults an operator's `select` (CONTRACT §3) can match are kept: one
    shard, several to ask (Ask), or none — then replay's own refusal, as no shard can
    hold a match (CL-4).

    A fault lives in the shard of its circuit's A-end city, a complaint fault in the shard
    its complaint was settled to (complaint_shard). So a fault id names its shard, a
    circuit its A-end city's; a customer's faults of a service in a city are in the shards
    of the customer's circuits with an end there and in that city's (a complaint without
    such a circuit); without a city, a complaint fault may be in any city's shard, so every
    shard is asked."""
    if sel.fault_id is not None:
        shard = fault_shard(sel.fault_id)
        if shard == UNMAPPED:
            return [UNMAPPED]
        # A shard's ids carry its group's name; a city's own name (an id from before its city
        # joined a group) still finds the group.
        if shard in inventory.cities:
            return [inventory.group_of(shard)]
        return Rejected(f"select {sel.describe()}: fault {sel.fault_id} is unknown")
    if sel.circuit_id is not None:
        circuit = inventory.circuits.get(sel.circuit_id)
        return [inventory.group_of(circuit.a_city)] if circuit else not_one_match(sel, [])
    if sel.customer_id is None:
        # An SF-6b fault counts ordinary customers' complaints, and an ordinary customer's
        # circuits are all local (a circuit ending in another city makes its customer
        # important): their complaints, and so the city's SF-6b fault, are in its shard.
        return [city_shard(inventory, sel.city)]
    if sel.customer_id not in inventory.customers:        # no fault can name it
        return not_one_match(sel, [])
    if sel.city is None:
        return Ask(tuple(all_shards(inventory)))
    shards = {city_shard(inventory, sel.city)}
    shards.update(inventory.group_of(c.a_city) for c in inventory.circuits_of(sel.customer_id)
                  if sel.service_type in (None, c.service_type) and sel.city in (c.a_city, c.z_city))
    return [shards.pop()] if len(shards) == 1 else Ask(tuple(sorted(shards)))


# An open fault as a shard's answer names it: [fault_id, opened_at, position, seq], where
# `position` is the place in the input order of the input that opened it (Correlator.position)
# and `seq` its order among the faults that input opened: together, replay's opening order.


def answer(event: Action | Complaint, seen: bool, found: Sequence[Fault]) -> dict:
    """A shard's answer to an ask about `event`: the open faults its select matches (an
    action), or whether it had the complaint and the fault it would join (SV-5)."""
    matches = [[f.fault_id, f.opened_at or 0.0, list(f.position), f.seq] for f in found]
    if type(event) is Complaint:
        return {"seen": seen, "join": matches[0] if matches else None}
    return {"matches": matches}


def settle(inventory: Inventory, event: Action | Complaint,
           answers: Mapping[str, dict]) -> tuple[str, str | None] | Rejected:
    """Where an asked input goes, with the fault it means (`pick`), from every asked shard's
    answer: an action's one match, else CL-4's refusal naming them all in opening order;
    a complaint to the shard that had it already (where it changes nothing), else with the
    earliest open fault to join (SV-5), else to its city's shard (complaint_shard: CP-1,
    SV-6)."""
    def order(shard: str, m: list) -> tuple:
        return (tuple(m[2]), m[3], shard)

    if type(event) is Complaint:
        seen = sorted(shard for shard, a in answers.items() if a["seen"])
        if seen:
            return seen[0], None
        joins = sorted((a["join"][1], *order(shard, a["join"]), a["join"][0])
                       for shard, a in answers.items() if a["join"] is not None)
        if joins:
            return joins[0][-2], joins[0][-1]
        return complaint_shard(inventory, event.customer_id, event.city, event.service_type), None
    found = sorted((*order(shard, m), m[0]) for shard, a in answers.items() for m in a["matches"])
    if len(found) == 1:
        return found[0][-2], found[0][-1]
    return not_one_match(event.select, [fault_id for *_k, fault_id in found])


def checked_answer(value: object, complaint: bool) -> dict | None:
    """A shard's answer as it came over the bus, if it has the shape `answer` gives it for a
    complaint (`complaint`) or an action."""
    def match(m: object) -> bool:
        return (type(m) is list and len(m) == 4 and type(m[0]) is str and type(m[1]) in (int, float)
                and type(m[2]) is list and len(m[2]) <= 8 and all(type(p) is int for p in m[2])
                and type(m[3]) is int)

    if type(value) is not dict:
        return None
    if not complaint:
        ok = type(value.get("matches")) is list and all(match(m) for m in value["matches"])
    else:
        ok = type(value.get("seen")) is bool and (value.get("join") is None or match(value["join"]))
    return value if ok else None
