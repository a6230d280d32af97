"""The CONTRACT §3 illustrative records, end to end."""

from scenario import Inv, alarm, run, t


def contract_inventory() -> Inv:
    inv = Inv().customer("C-NH", "provincial", "gold", name="南方航空集团公司", hq_city="GZ")
    inv.resource("GZ-CPE-0001", "cpe").resource("GZ-OTN-A:1-3-1", "transmission", maintainer="province")
    inv.resource("GZ-OTN-B:2-1-4", "transmission", maintainer="province")
    inv.resource("GZ-PE-01:GE0/0/1", "data").resource("GZ-PE-02:GE0/0/1", "data")
    inv.circuit("GZ-INT-0001", "C-NH", paths=[["GZ-CPE-0001", "GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1"],
                                              ["GZ-CPE-0001", "GZ-OTN-B:2-1-4", "GZ-PE-02:GE0/0/1"]])
    return inv


def test_contract_example_dual_route_cut_turns_serious_at_30_minutes():
    res = run(contract_inventory(), [
        alarm(0.0833, "GZ-OTN-A:1-3-1", event_min=0),
        alarm(0.0833, "GZ-OTN-B:2-1-4", event_min=0),
    ], until=t(31))
    opened = res.one("fault.opened")
    assert opened["root_resource"] == "GZ-OTN-B:2-1-4"
    assert opened["cause_side"] == "core" and opened["layer"] == "transmission"
    assert opened["opened_at"] == "2026-11-25T10:00:00+08:00"
    order = res.one("work_order.created", queue="prov.specialist.transmission")
    assert order["title"] == "【集团客户一般故障】南方航空集团公司 互联网专线中断"
    assert order["rule"] == "RT-2" and order["priority"] == "normal"
    serious = res.one("fault.serious")
    assert serious["at"] == "2026-11-25T10:30:00+08:00"
    assert (serious["rule"], serious["trigger"]) == ("SF-3", "duration")
