"""Which city's shard owns an input (issue 3: keyed so that one city's events stay in order).

The unit of correlation state is the circuit, and a circuit belongs to its **A-end city**:
the city that holds its customer's access and that RULES.md routes it by (`city.C.*`). A
cross-city or cross-province circuit therefore lives in exactly one shard, so its paths,
timers and faults are never split. An alarm is routed to every city owning a circuit
whose path holds the resource (a GZ–SZ trunk alarm reaches both GZ's and SZ's shards,
each correlating only its own circuits); a complaint to the city owning the customer's
matching circuit, else the complaint's city; an operator action to the city named in the
fault id (`F-GZ-000123`) or owning the selected circuit or service.
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
    cities = sorted({circuit.a_city for circuit, _path in inventory.circuits_on(resource_id)})
    return cities or [res.city]


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
