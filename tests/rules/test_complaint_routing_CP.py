"""RULES.md CP-2 (green channel) and §4 step 2: who gets a green-channel complaint's order."""

import pytest
from scenario import Inv, complaint, run, t


def created(res) -> list[tuple[str, str, list[str], str, str]]:
    return [(r["queue"], r["rule"], r["cc"], r["priority"], r["title"]) for r in res.of("work_order.created")]


def customer_inv(level: str = "city", grade: str = "standard", span: str = "local",
                 z_city: str | None = None) -> Inv:
    inv = Inv().customer("C1", level, grade, name="测试客户", hq_city="GZ" if level == "provincial" else None)
    inv.circuit("GZ-L-1", "C1", span=span, z_city=z_city)
    return inv


GREEN_GENERAL = "【绿色通道一般故障】测试客户 互联网专线客户报障"
PLAIN_GENERAL = "【集团客户一般故障】测试客户 互联网专线客户报障"


@pytest.mark.parametrize(("channel", "grade"), [
    pytest.param("400", "standard", id="400"),
    pytest.param("account_manager", "gold", id="account_manager"),
])
def test_CP_2_green_channel_complaint_goes_to_city_monitoring(channel, grade):
    res = run(customer_inv("city", grade), [complaint(0, "C1", channel=channel, scope="partial")], until=t(1))
    assert created(res) == [("city.GZ.monitoring", "CP-2", [], "normal", GREEN_GENERAL)]
    res.none("escalation")


def test_CP_2_direct_complaint_from_diamond_is_green_and_escalated_by_ES_1():
    res = run(customer_inv("city", "diamond"), [complaint(0, "C1", channel="direct", scope="partial")],
              until=t(1))
    assert created(res) == [("city.GZ.monitoring", "CP-2", [], "normal", GREEN_GENERAL),
                            ("prov.monitoring", "ES-1", [], "normal", GREEN_GENERAL)]


@pytest.mark.parametrize(("channel", "grade"), [
    pytest.param("direct", "gold", id="direct-not-diamond"),
    pytest.param("10086-8", "standard", id="hotline"),
])
def test_CP_2_other_channels_are_not_green_and_use_the_level_rows(channel, grade):
    res = run(customer_inv("city", grade), [complaint(0, "C1", channel=channel, scope="partial")], until=t(1))
    assert created(res) == [("city.GZ.specialist.transmission", "RT-8", [], "normal", PLAIN_GENERAL),
                            ("city.GZ.netservice", "RT-8", [], "normal", PLAIN_GENERAL)]


@pytest.mark.parametrize(("channel", "grade"), [
    pytest.param("400", "gold", id="400"),
    pytest.param("account_manager", "silver", id="account_manager"),
    pytest.param("direct", "diamond", id="direct-diamond"),
])
def test_CP_2_provincial_customer_green_complaint_goes_to_prov_monitoring(channel, grade):
    res = run(customer_inv("provincial", grade), [complaint(0, "C1", channel=channel, scope="partial")],
              until=t(1))
    assert created(res) == [("prov.monitoring", "CP-2", [], "normal", GREEN_GENERAL)]
    res.none("escalation")


def test_CP_2_cross_province_circuit_green_complaint_goes_to_prov_monitoring():
    inv = customer_inv("city", "standard", span="cross_province", z_city="湖南长沙")
    res = run(inv, [complaint(0, "C1", channel="400", scope="partial")], until=t(1))
    assert res.one("fault.opened")["circuit_id"] == "GZ-L-1"
    # CP-2 and RT-9 both name prov.monitoring at once: RT-17 names it RT-9
    assert created(res) == [("prov.monitoring", "RT-9", [], "normal", GREEN_GENERAL)]


def test_CP_2_green_complaint_on_cross_city_circuit_still_adds_the_peer_city():
    inv = customer_inv("city", "standard", span="cross_city", z_city="SZ")
    res = run(inv, [complaint(0, "C1", channel="account_manager", scope="partial")], until=t(1))
    assert created(res) == [("city.GZ.monitoring", "CP-2", [], "normal", GREEN_GENERAL),
                            ("city.SZ.monitoring", "RT-10", ["prov.monitoring"], "normal", GREEN_GENERAL)]


def test_CP_2_green_complaint_on_untransferred_circuit_goes_by_RT_11():
    inv = Inv().customer("C1", name="测试客户")
    inv.circuit("GZ-L-1", "C1", transferred=False)
    res = run(inv, [complaint(0, "C1", channel="400", scope="partial")], until=t(1))
    assert created(res) == [("city.GZ.netservice", "RT-11", [], "normal", GREEN_GENERAL)]
