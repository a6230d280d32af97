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


def alarm_shards(inventory: Inventory, resource_id: str) -> list[str]:
    """Every city whose shard must see an alarm on this resource, in a stable order."""
    res = inventory.resources.get(resource_id)
    if res is None:
        return [UNMAPPED]
    cities = sorted({circuit.a_city for circuit, _path in inventory.circuits_on(resource_id)})
    return cities or [res.city]


def complaint_shard(inventory: Inventory, customer_id: str, city: str, service_type: str) -> str:
    """SV-5 looks for the customer's circuits with an end in the complaint's city."""
    owners = [c.a_city for c in inventory.circuits_of(customer_id)
              if c.service_type == service_type and city in (c.a_city, c.z_city)]
    if not owners or city in owners:
        return city
    return owners[0]


def fault_shard(fault_id: str) -> str | None:
    """The city in a sharded fault id `F-GZ-000123`; None for an unsharded id."""
    parts = fault_id.split("-")
    return parts[1] if len(parts) == 3 else None


def action_shard(inventory: Inventory, select: dict) -> str | None:
    """The shard that can resolve an operator's `select` (CONTRACT §3), or None."""
    if select.get("fault_id"):
        return fault_shard(select["fault_id"])
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
    return select.get("city")
