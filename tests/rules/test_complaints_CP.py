"""RULES.md §5 Complaints: CP-1, CP-2 (green flag and titles), CP-3."""

import pytest
from scenario import Inv, alarm, complaint, run, t

# ---------------------------------------------------------------------- CP-1


@pytest.mark.parametrize(("inv", "city", "circuit_id"), [
    pytest.param(Inv().customer("O").circuit("O-INT", "O"), "GZ", "O-INT", id="only-circuit-a-end"),
    pytest.param(Inv().customer("O").circuit("O-INT", "O", a_city="SZ", z_city="GZ", span="cross_city"),
                 "GZ", "O-INT", id="only-circuit-z-end"),
    pytest.param(Inv().customer("O").circuit("O-INT", "O").circuit("O-VOICE", "O", "voice"),
                 "GZ", "O-INT", id="only-circuit-of-that-service-type"),
    pytest.param(Inv().customer("O").circuit("O-A", "O").circuit("O-B", "O"), "GZ", None,
                 id="several-circuits-none-named"),
    pytest.param(Inv().customer("O").circuit("O-A", "O").circuit("O-B", "O", a_city="SZ"), "GZ", "O-A",
                 id="one-of-two-in-the-city"),
    pytest.param(Inv().customer("O").circuit("O-VOICE", "O", "voice"), "GZ", None, id="no-circuit-of-type"),
    pytest.param(Inv().customer("O").circuit("O-INT", "O", a_city="SZ"), "GZ", None, id="no-circuit-in-city"),
    pytest.param(Inv().customer("O"), "ZH", None, id="customer-without-circuits"),
])
def test_CP_1_complaint_opens_a_complaint_fault(inv, city, circuit_id):
    res = run(inv, [complaint(12, "O", city)])
    opened = res.one("fault.opened")
    expected = {"type": "fault.opened", "at": t(12), "kind": "complaint", "circuit_id": circuit_id,
                "customer_id": "O", "city": city, "service_type": "internet",
                "cause_side": "unknown", "root_resource": None, "layer": None, "probable_cause": None,
                "opened_at": t(12)}
    assert {k: opened[k] for k in expected} == expected
    assert opened["fault_id"] == "F-000001" and opened["incident_id"].startswith("I-")


def test_CP_1_important_flag_follows_the_customer():
    inv = Inv().customer("O").customer("P", "provincial")
    res = run(inv, [complaint(0, "O"), complaint(1, "P")])
    assert [(r["customer_id"], r["important"]) for r in res.of("fault.opened")] == [("O", False), ("P", True)]


def test_CP_1_unknown_customer_is_rejected():
    res = run(Inv().customer("O"), [complaint(0, "O"), complaint(1, "NOPE")])
    rej = res.one("input.rejected")
    assert rej["line"] == 2 and "NOPE" in rej["reason"]
    assert res.status == 3
    assert len(res.of("fault.opened")) == 1


# ---------------------------------------------------------------------- CP-2


@pytest.mark.parametrize(("channel", "level", "grade", "green", "queue", "rule"), [
    pytest.param("400", "city", "standard", True, "city.GZ.monitoring", "CP-2", id="400"),
    pytest.param("account_manager", "city", "gold", True, "city.GZ.monitoring", "CP-2", id="account_manager"),
    pytest.param("direct", "city", "diamond", True, "city.GZ.monitoring", "CP-2", id="direct-diamond"),
    pytest.param("400", "provincial", "gold", True, "prov.monitoring", "CP-2", id="400-provincial"),
    pytest.param("direct", "city", "gold", False, "city.GZ.specialist.transmission", "RT-8",
                 id="direct-gold-is-not-green"),
    pytest.param("10086-8", "city", "standard", False, "city.GZ.specialist.transmission", "RT-8",
                 id="hotline-is-not-green"),
    pytest.param("10086-8", "city", "diamond", False, "prov.specialist.transmission", "RT-5",
                 id="hotline-diamond-is-not-green"),
])
def test_CP_2_green_channel_flags_the_fault_and_its_title(channel, level, grade, green, queue, rule):
    inv = Inv().customer("C", level, grade, name="某集团", hq_city="GZ" if level == "provincial" else None)
    res = run(inv, [complaint(0, "C", channel=channel)])
    fid = res.one("fault.opened")["fault_id"]
    order = res.one("work_order.created", queue=queue)
    assert order["fault_ids"] == [fid] and order["rule"] == rule
    tag = "【绿色通道一般故障】" if green else "【集团客户一般故障】"
    assert order["title"] == f"{tag}某集团 互联网专线客户报障"
    assert all(r["title"].startswith(tag) for r in res.of("work_order.created"))


def test_CP_2_green_complaint_turning_serious_carries_the_green_serious_tag():
    inv = Inv().customer("P", "provincial", "gold", name="某省级集团", hq_city="GZ")
    res = run(inv, [complaint(0, "P", channel="400")], until=t(31))
    fid = res.one("fault.opened")["fault_id"]
    assert res.one("fault.serious", fault_id=fid)["at"] == t(30)
    made_serious = res.of("work_order.created", at=t(30))
    assert made_serious, "RT-1 gives new orders when a provincial customer's fault turns serious"
    assert {r["title"] for r in made_serious} == {"【绿色通道严重故障】某省级集团 互联网专线客户报障"}


def test_CP_2_green_complaint_joining_an_alarm_fault_does_not_make_it_green():
    inv = Inv().customer("O", name="某集团").circuit("O-INT", "O")
    res = run(inv, [alarm(0, "O-INT-OTN"), complaint(5, "O", channel="400")])
    assert {r["title"] for r in res.of("work_order.created")} == {"【集团客户一般故障】某集团 互联网专线中断"}


# ---------------------------------------------------------------------- CP-3


def test_CP_3_partial_complaint_of_an_important_customer_is_not_sf6a():
    res = run(Inv().customer("P", "provincial"), [complaint(0, "P", scope="partial")], until=t(120))
    opened = res.one("fault.opened")
    assert opened["kind"] == "complaint" and opened["important"] is True
    res.none("fault.serious")


@pytest.mark.parametrize("scopes", [
    pytest.param(["partial", "all_users", "all_users"], id="first-partial"),
    pytest.param(["all_users", "all_users", "partial"], id="third-partial"),
    pytest.param(["partial"] * 3, id="all-partial"),
])
def test_CP_3_partial_complaints_do_not_count_toward_sf6b(scopes):
    inv = Inv().customer("O1").customer("O2").customer("O3")
    res = run(inv, [complaint(i, f"O{i + 1}", scope=s) for i, s in enumerate(scopes)], until=t(120))
    assert [r["customer_id"] for r in res.of("fault.opened")] == ["O1", "O2", "O3"]
    res.none("fault.serious")


def test_CP_3_a_fourth_all_users_complaint_completes_sf6b_after_a_partial_one():
    inv = Inv().customer("O1").customer("O2").customer("O3").customer("O4")
    scopes = ["all_users", "partial", "all_users", "all_users"]
    res = run(inv, [complaint(i, f"O{i + 1}", scope=s) for i, s in enumerate(scopes)], until=t(60))
    sf6b = res.one("fault.opened", customer_id=None)
    assert sf6b["opened_at"] == t(3)
    assert res.one("fault.serious", fault_id=sf6b["fault_id"])["at"] == t(33)
