"""Which city's shard owns an input (issue 3: keyed so that one city's events stay in order).

The unit of correlation state is the circuit, and a circuit belongs to its **A-end city**:
the city that holds its customer's access and that RULES.md routes it by (`city.C.*`). A
cross-city or cross-province circuit therefore lives in exactly one shard, so its paths,
timers and faults are never split. An alarm is routed to every city owning a circuit
whose path holds the resource (a GZ–SZ trunk alarm reaches both GZ's and SZ's shards,
each correlating only its own circuits); a complaint to the city owning the customer's
matching circuit, else the complaint's city; an operator action to the city named in the
fault id (`F-GZ-000123`) or owning the selected circuit or service.

Cross-city incidents (README, known limits). A root under circuits of two A-end cities makes
one incident (AL-6) and one specialist order (RT-13) per city here, one of each in replay.
Closing that is not a matter of choosing an owner shard. The shared order's records depend
on every member fault's severity and end: replay upgrades it once, when the first member
turns serious (RT-12). That can be a `confirm` naming `F-SZ-000001`. Only SZ's shard can
tell which fault that is, because the number comes from SZ's private counter. Yet GZ's shard
must know it to decide whether its own fault's TM-1 upgrades the order again, and the same
holds the other way round (tests/properties/test_cross_city_incident.py). A shard sees only
what the router sends it, and a runner publishes only under its own city's key. So an exact
version needs one of these:
- a channel between city shards, with a deterministic merge of the members' notices
  (per-city watermarks; replay's order within one input is the inventory order of the
  circuits), which is a runtime change;
- shards keyed by groups of cities that share resources: cross-city circuits and provincial
  gateways join most cities into one, so nothing scales out;
- each shard replaying the other cities' inputs, which comes to the same thing, since fault
  ids, SV-5 and SF-6b tie a customer's faults to its city's whole stream.
Any narrower shadowing passes the equivalence tests but is wrong for id-named actions.
"""

from __future__ import annotations

from shared.inventory import Inventory

UNMAPPED = "-"          # the shard that reports alarms on resources not in the inventory (AL-7)


def all_shards(inventory: Inventory) -> list[str]:
    """Every shard there can be: the inventory's cities and UNMAPPED. Inputs never make
    another (a complaint's or an operator's city the inventory does not name goes to
    UNMAPPED), so a hostile feed cannot grow the shards without bound."""
    return sorted(inventory.cities) + [UNMAPPED]


def alarm_shards(inventory: Inventory, resource_id: str) -> list[str]:
    """Every city whose shard must see an alarm on this resource, in a stable order."""
    res = inventory.resources.get(resource_id)
    if res is None:
        return [UNMAPPED]
    cities = inventory.a_cities_on(resource_id)
    return list(cities) if cities else [res.city]


def complaint_shard(inventory: Inventory, customer_id: str, city: str, service_type: str) -> str:
    """SV-5 looks for the customer's circuits with an end in the complaint's city. A city the
    inventory does not name has none: UNMAPPED keeps such complaints (and their SF-6b counts
    per city) together, as one correlator would."""
    if city not in inventory.cities:
        return UNMAPPED
    owners = [c.a_city for c in inventory.circuits_of(customer_id)
              if c.service_type == service_type and city in (c.a_city, c.z_city)]
    if not owners or city in owners:
        return city
    return owners[0]


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
        return shard if shard in inventory.cities or shard == UNMAPPED else None
    if select.get("circuit_id"):
        circuit = inventory.circuits.get(select["circuit_id"])
        return circuit.a_city if circuit else None
    if select.get("customer_id"):
        city = select.get("city")
        circuits = [c for c in inventory.circuits_of(select["customer_id"])
                    if select.get("service_type") in (None, c.service_type)
                    and (city is None or city in (c.a_city, c.z_city))]
        if city is not None:
            return complaint_shard(inventory, select["customer_id"], city, select.get("service_type") or "")
        owners = sorted({c.a_city for c in circuits})
        return owners[0] if len(owners) == 1 else None
    city = select.get("city")
    return None if city is None else city if city in inventory.cities else UNMAPPED
