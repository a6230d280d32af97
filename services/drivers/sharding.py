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
only its own circuits); a complaint to the group owning the customer's matching circuit, else
the complaint's city's group; an operator action to the group named in the fault id or owning
the selected circuit or service.

The cost is scale-out: provincial trunks and core gateways join most of a province's cities
into one group, and a group is one correlator (README, Performance, has its ceiling). The way
past it, if a province needs more than one correlator's rate, is a channel between city
shards with a deterministic merge of the members' notices (per-city watermarks on the router's
global order; replay's order within one input is the inventory order of the circuits; fault
ordinals from (input, circuit) instead of per-shard counters), which is a runtime change.
"""

from __future__ import annotations

from shared.inventory import Inventory

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


def action_shard(inventory: Inventory, select: dict) -> str | None:
    """The shard that can resolve an operator's `select` (CONTRACT §3), or None."""
    if select.get("fault_id"):
        shard = fault_shard(select["fault_id"])
        if shard == UNMAPPED:
            return UNMAPPED
        # A shard's ids carry its group's name; a city's own name (an id from before its city
        # joined a group) still finds the group.
        return inventory.group_of(shard) if shard in inventory.cities else None
    if select.get("circuit_id"):
        circuit = inventory.circuits.get(select["circuit_id"])
        return inventory.group_of(circuit.a_city) if circuit else None
    if select.get("customer_id"):
        city = select.get("city")
        if city is not None:
            return complaint_shard(inventory, select["customer_id"], city, select.get("service_type") or "")
        owners = sorted({inventory.group_of(c.a_city) for c in inventory.circuits_of(select["customer_id"])
                         if select.get("service_type") in (None, c.service_type)})
        return owners[0] if len(owners) == 1 else None
    city = select.get("city")
    return None if city is None else city_shard(inventory, city)
