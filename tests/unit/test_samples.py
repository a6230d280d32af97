"""The shipped sample inventory loads and holds the cases the demo and tests rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.inventory import Inventory, load_inventory
from shared.rulebook import load_rulebook

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "inventory.json"


@pytest.fixture(scope="module")
def inv() -> Inventory:
    return load_inventory(SAMPLE)


def test_sample_loads(inv: Inventory) -> None:
    assert len(inv.customers) >= 10 and len(inv.circuits) >= 15


def test_every_resource_is_used_and_every_city_known(inv: Inventory) -> None:
    cities = load_rulebook().city_names
    used = {r for c in inv.circuits.values() for p in c.paths for r in p}
    assert used == set(inv.resources)
    assert {r.city for r in inv.resources.values()} <= set(cities)
    for c in inv.circuits.values():
        assert c.a_city in cities
        assert c.span == "cross_province" or c.z_city is None or c.z_city in cities


def test_china_southern_dual_routed_lines_share_a_section(inv: Inventory) -> None:
    nh = inv.customers["C-NH"]
    assert (nh.name, nh.level, nh.grade, nh.hq_city, nh.important) == (
        "南方航空集团公司", "provincial", "gold", "GZ", True)
    lines = [c for c in inv.circuits_of("C-NH") if c.service_type == "internet" and c.a_city == "GZ"]
    assert len(lines) == 2 and all(len(c.paths) == 2 for c in lines)
    on_section = {c.circuit_id for c, _ in inv.circuits_on("GZ-OTN-A:1-3-1")}
    assert {c.circuit_id for c in lines} < on_section  # shared with other customers' circuits
    assert {inv.circuits[cid].customer_id for cid in on_section} - {"C-NH"}


def test_customer_mix(inv: Inventory) -> None:
    customers = inv.customers.values()
    assert any(c.level == "provincial" and c.grade == "diamond" for c in customers)
    fs_ordinary_internet = {c.customer_id for c in customers if not c.important
                            for k in inv.circuits_of(c.customer_id)
                            if k.a_city == "FS" and k.service_type == "internet"}
    assert len(fs_ordinary_internet) >= 3
    assert any(c.level == "city" and not c.important and c.customer_id.startswith("C-GZ") for c in customers)


def test_circuit_mix(inv: Inventory) -> None:
    circuits = list(inv.circuits.values())
    assert {c.service_type for c in circuits} == {"internet", "data", "voice", "gprs_apn", "sms",
                                                  "circuit_lease"}
    lease = [c for c in circuits if c.service_type == "circuit_lease" and c.span == "cross_city"]
    assert any(c.a_city == "GZ" and c.z_city == "SZ" and inv.customers[c.customer_id].level == "city"
               and inv.customers[c.customer_id].grade == "silver" for c in lease)
    assert any(c.span == "cross_province" for c in circuits)
    assert any(not c.maintenance_transferred for c in circuits)
