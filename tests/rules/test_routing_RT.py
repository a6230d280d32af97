"""RULES.md §4 routing: RT-1…RT-17 (who gets the work order, its rule, cc, priority, title)."""

import pytest
from scenario import Inv, alarm, complaint, run, t


def clear(line: dict, at_min: float) -> dict:
    """The clear of an `alarm` line (same source and alarm_id) at `at_min`."""
    return {**line, "at": t(at_min),
            "alarm": {**line["alarm"], "state": "cleared", "event_time": t(at_min)}}


def summary(res, fault_id: str = "F-000001") -> list[tuple[str, str, list[str], str]]:
    """(queue, rule, cc, priority) of the work orders created for a fault, in order."""
    return [(r["queue"], r["rule"], r["cc"], r["priority"]) for r in res.of("work_order.created")
            if fault_id in r["fault_ids"]]


def one_circuit(level: str = "city", grade: str = "standard", *, service_type: str = "internet",
                span: str = "local", z_city: str | None = None, hq_city: str | None = None,
                transferred: bool = True) -> Inv:
    inv = Inv().customer("C1", level, grade, name="测试客户", hq_city=hq_city)
    inv.circuit("GZ-L-1", "C1", service_type, z_city=z_city, span=span, transferred=transferred,
                paths=[["GZ-L-1-CPE", "GZ-L-1-OTN", "GZ-L-1-PE"]])
    inv.resource("GZ-CORE-1", "core")
    return inv


# ---------------------------------------------------------------- step 3: the level rows

@pytest.mark.parametrize(("level", "grade", "hq", "root", "expected"), [
    pytest.param("provincial", "gold", "GZ", "GZ-L-1-OTN",
                 [("prov.specialist.transmission", "RT-2", [], "normal")], id="RT-2-transmission"),
    pytest.param("provincial", "gold", "GZ", "GZ-L-1-PE",
                 [("prov.specialist.data", "RT-2", [], "normal")], id="RT-2-data"),
    pytest.param("provincial", "gold", "GZ", "GZ-L-1-CPE",
                 [("city.GZ.monitoring", "RT-3", [], "normal")], id="RT-3-cpe"),
    pytest.param("city", "gold", None, "GZ-L-1-OTN",
                 [("city.GZ.specialist.transmission", "RT-6", [], "normal")], id="RT-6-transmission"),
    pytest.param("city", "standard", None, "GZ-L-1-PE",
                 [("city.GZ.specialist.data", "RT-6", [], "normal")], id="RT-6-data"),
    pytest.param("city", "standard", None, "GZ-L-1-CPE",
                 [("city.GZ.netservice", "RT-7", [], "normal")], id="RT-7-cpe"),
])
def test_RT_2_RT_3_RT_6_RT_7_alarm_faults_go_to_the_level_row(level, grade, hq, root, expected):
    res = run(one_circuit(level, grade, hq_city=hq), [alarm(0, root)], until=t(1))
    assert summary(res) == expected
    assert res.status == 0


def test_RT_6_core_layer_root_goes_to_city_core_specialist():
    inv = Inv().customer("C1", name="测试客户").resource("GZ-CORE-1", "core")
    inv.circuit("GZ-L-1", "C1", paths=[["GZ-CORE-1"]])
    res = run(inv, [alarm(0, "GZ-CORE-1")], until=t(1))
    assert summary(res) == [("city.GZ.specialist.core", "RT-6", [], "normal")]


def test_RT_4_provincial_complaint_goes_to_prov_transmission_and_city_monitoring():
    inv = one_circuit("provincial", "gold", hq_city="GZ")
    res = run(inv, [complaint(0, "C1", scope="partial")], until=t(1))
    assert res.one("fault.opened")["cause_side"] == "unknown"
    assert summary(res) == [("prov.specialist.transmission", "RT-4", [], "normal"),
                            ("city.GZ.monitoring", "RT-4", [], "normal")]


def test_RT_8_city_level_complaint_goes_to_city_transmission_and_city_netservice():
    res = run(one_circuit(), [complaint(0, "C1")], until=t(1))
    assert summary(res) == [("city.GZ.specialist.transmission", "RT-8", [], "normal"),
                            ("city.GZ.netservice", "RT-8", [], "normal")]


@pytest.mark.parametrize(("level", "hq", "root", "expected"), [
    pytest.param("city", None, "GZ-L-1-OTN",
                 [("prov.specialist.transmission", "RT-5", [], "normal"),
                  ("city.GZ.monitoring", "RT-5", [], "normal")], id="city-level-core"),
    pytest.param("provincial", "GZ", "GZ-L-1-PE",
                 [("prov.specialist.data", "RT-5", [], "normal"),
                  ("city.GZ.monitoring", "RT-5", [], "normal")], id="provincial-core-data"),
    pytest.param("city", None, "GZ-L-1-CPE",
                 [("city.GZ.netservice", "RT-5", [], "normal"),
                  ("city.GZ.monitoring", "RT-5", [], "normal")], id="city-level-customer-side"),
    pytest.param("provincial", "GZ", "GZ-L-1-CPE",
                 [("prov.netservice", "RT-5", [], "normal"),
                  ("city.GZ.monitoring", "RT-5", [], "normal")], id="provincial-at-hq-customer-side"),
    pytest.param("provincial", "SZ", "GZ-L-1-CPE",
                 [("city.GZ.netservice", "RT-5", [], "normal"),
                  ("city.GZ.monitoring", "RT-5", [], "normal")], id="provincial-branch-customer-side"),
])
def test_RT_5_diamond_customer_goes_to_province_and_city_at_once(level, hq, root, expected):
    res = run(one_circuit(level, "diamond", hq_city=hq), [alarm(0, root)], until=t(1))
    assert summary(res) == expected
    assert {r["at"] for r in res.of("work_order.created")} == {t(0)}
    res.none("escalation")


def test_RT_5_diamond_hotline_complaint_goes_to_prov_transmission_and_city_monitoring():
    res = run(one_circuit("city", "diamond"), [complaint(0, "C1", channel="10086-8", scope="partial")],
              until=t(1))
    assert summary(res) == [("prov.specialist.transmission", "RT-5", [], "normal"),
                            ("city.GZ.monitoring", "RT-5", [], "normal")]


# ---------------------------------------------------------------- step 4: RT-9, RT-10

@pytest.mark.parametrize(("level", "grade", "expected"), [
    pytest.param("city", "standard", [("city.GZ.specialist.transmission", "RT-6", [], "normal"),
                                      ("prov.monitoring", "RT-9", [], "normal")], id="city-level"),
    pytest.param("provincial", "gold", [("prov.specialist.transmission", "RT-2", [], "normal"),
                                        ("prov.monitoring", "RT-9", [], "normal")], id="provincial"),
])
def test_RT_9_cross_province_circuit_adds_prov_monitoring(level, grade, expected):
    inv = one_circuit(level, grade, span="cross_province", z_city="湖南长沙", hq_city="GZ")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(1))
    assert summary(res) == expected


def test_RT_10_cross_city_circuit_adds_peer_city_monitoring_cc_province():
    inv = one_circuit("city", "standard", span="cross_city", z_city="SZ")
    res = run(inv, [alarm(0, "GZ-L-1-CPE")], until=t(1))
    assert summary(res) == [("city.GZ.netservice", "RT-7", [], "normal"),
                            ("city.SZ.monitoring", "RT-10", ["prov.monitoring"], "normal")]


def test_RT_10_complaint_in_the_z_city_sends_the_a_city_as_peer():
    inv = one_circuit("city", "standard", span="cross_city", z_city="SZ")
    res = run(inv, [complaint(0, "C1", city="SZ", scope="partial")], until=t(1))
    opened = res.one("fault.opened")
    assert (opened["city"], opened["circuit_id"]) == ("SZ", "GZ-L-1")
    assert summary(res) == [("city.SZ.specialist.transmission", "RT-8", [], "normal"),
                            ("city.SZ.netservice", "RT-8", [], "normal"),
                            ("city.GZ.monitoring", "RT-10", ["prov.monitoring"], "normal")]


# ---------------------------------------------------------------- step 1: RT-11

@pytest.mark.parametrize(("level", "grade", "span", "z", "expected"), [
    pytest.param("city", "standard", "local", None,
                 [("city.GZ.netservice", "RT-11", [], "normal")], id="city-level"),
    pytest.param("provincial", "gold", "local", None,
                 [("city.GZ.netservice", "RT-11", ["prov.netservice"], "normal")], id="provincial-cc"),
    pytest.param("city", "diamond", "local", None,
                 [("city.GZ.netservice", "RT-11", [], "normal")], id="diamond-not-RT-5"),
    pytest.param("city", "standard", "cross_province", "湖南长沙",
                 [("city.GZ.netservice", "RT-11", [], "normal"),
                  ("prov.monitoring", "RT-9", [], "normal")], id="step-4-still-added"),
])
def test_RT_11_not_transferred_circuit_goes_to_city_netservice(level, grade, span, z, expected):
    inv = one_circuit(level, grade, span=span, z_city=z, hq_city="GZ", transferred=False)
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(1))
    assert summary(res) == expected


# ---------------------------------------------------------------- serious: RT-1, RT-12

def test_RT_1_provincial_serious_core_fault_orders_in_record_order():
    inv = one_circuit("provincial", "gold", hq_city="GZ")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(31))
    at30 = [r for r in res.records if r["at"] == t(30)]
    assert [r["type"] for r in at30] == [
        "fault.serious", "work_order.upgraded", "work_order.created", "work_order.created",
        "work_order.created", "onsite.required", "sms", "phone.notify"]
    assert at30[1] == {"type": "work_order.upgraded", "at": t(30), "work_order_id": "W-000001",
                       "priority": "urgent"}
    assert summary(res) == [
        ("prov.specialist.transmission", "RT-2", [], "normal"),
        ("city.GZ.monitoring", "RT-1", ["prov.netservice"], "urgent"),
        ("prov.monitoring", "RT-12", [], "urgent"),
        ("prov.netservice", "TM-4", [], "urgent"),
    ]
    assert res.orders()["city.GZ.monitoring"]["title"] == "【集团客户严重故障】测试客户 互联网专线中断"


def test_RT_1_provincial_branch_customer_side_team_is_city_netservice():
    inv = one_circuit("provincial", "gold", hq_city="SZ")
    res = run(inv, [alarm(0, "GZ-L-1-CPE")], until=t(31))
    assert summary(res) == [
        ("city.GZ.monitoring", "RT-3", [], "normal"),
        ("city.GZ.netservice", "RT-1", ["prov.netservice"], "urgent"),
        ("prov.monitoring", "RT-12", [], "urgent"),
        ("prov.netservice", "TM-4", [], "urgent"),
    ]
    assert res.of("work_order.upgraded") == [
        {"type": "work_order.upgraded", "at": t(30), "work_order_id": "W-000001", "priority": "urgent"}]


def test_RT_12_city_level_serious_fault_upgrades_every_order_and_adds_prov_monitoring():
    inv = one_circuit("city", "diamond")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(31))
    assert res.of("work_order.upgraded") == [
        {"type": "work_order.upgraded", "at": t(30), "work_order_id": "W-000001", "priority": "urgent"},
        {"type": "work_order.upgraded", "at": t(30), "work_order_id": "W-000002", "priority": "urgent"},
    ]
    assert summary(res) == [
        ("prov.specialist.transmission", "RT-5", [], "normal"),
        ("city.GZ.monitoring", "RT-5", [], "normal"),
        ("prov.monitoring", "RT-12", [], "urgent"),
    ]
    assert res.orders()["prov.monitoring"]["at"] == t(30)
    assert "arrive_by" not in res.orders()["prov.monitoring"]


def test_RT_12_prov_monitoring_already_held_is_upgraded_not_duplicated():
    inv = one_circuit("city", "gold", span="cross_province", z_city="湖南长沙")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(31))
    assert res.one("fault.serious")["rule"] == "SF-3"
    assert summary(res) == [("city.GZ.specialist.transmission", "RT-6", [], "normal"),
                            ("prov.monitoring", "RT-9", [], "normal")]
    assert [r["work_order_id"] for r in res.of("work_order.upgraded")] == ["W-000001", "W-000002"]


# ---------------------------------------------------------------- RT-13 incidents

def incident_inventory() -> Inv:
    inv = Inv().customer("D1", "city", "diamond", name="钻石一")
    inv.customer("D2", "city", "diamond", name="钻石二")
    inv.circuit("A", "D1", paths=[["A-CPE", "SH-OTN", "A-PE"]])
    inv.circuit("B", "D2", paths=[["B-CPE", "SH-OTN", "B-PE"], ["B-CPE", "B-OTN2", "B-PE"]])
    return inv


def test_RT_13_incident_shares_specialist_order_and_resolves_it_when_last_fault_ends():
    shared = alarm(0, "SH-OTN")
    second = alarm(2, "B-OTN2", event_min=-1)     # completes B's interruption with root SH-OTN
    res = run(incident_inventory(), [shared, second, clear(second, 10), clear(shared, 20)], until=t(21))
    f1, f2 = res.of("fault.opened")
    assert f1["incident_id"] == f2["incident_id"] == "I-000001"
    assert f2["root_resource"] == "SH-OTN"
    spec = res.one("work_order.created", queue="prov.specialist.transmission")
    assert spec["fault_ids"] == ["F-000001"] and spec["work_order_id"] == "W-000001"
    assert res.of("work_order.updated") == [
        {"type": "work_order.updated", "at": t(2), "work_order_id": "W-000001",
         "fault_ids": ["F-000001", "F-000002"]}]
    # monitoring: one order per fault
    mons = res.of("work_order.created", queue="city.GZ.monitoring")
    assert [(m["work_order_id"], m["fault_ids"]) for m in mons] == [("W-000002", ["F-000001"]),
                                                                   ("W-000003", ["F-000002"])]
    # F-000002 ends at 10: only its own monitoring order is resolved
    assert [(r["at"], r["work_order_id"]) for r in res.of("work_order.resolved")] == [
        (t(10), "W-000003"), (t(20), "W-000001"), (t(20), "W-000002")]


def test_RT_13_fault_opening_late_with_an_earlier_opened_at_joins_the_shared_order():
    # F1 is serious at 30; F2 (same root, opened_at 0) joins the incident at 31
    inv = incident_inventory()
    shared = alarm(0, "SH-OTN")
    second = alarm(31, "B-OTN2", event_min=-1)   # B's paths: root SH-OTN at 0, opened_at 0
    res = run(inv, [shared, second], until=t(32))
    f2 = res.one("fault.opened", circuit_id="B")
    assert f2["opened_at"] == t(0)
    # F2 opens at 31 with opened_at 0: its TM-1 is overdue and fires at once (T-3)
    assert [(r["fault_id"], r["at"]) for r in res.of("fault.serious")] == [("F-000001", t(30)),
                                                                           ("F-000002", t(31))]
    spec = res.one("work_order.created", queue="prov.specialist.transmission")
    assert res.of("work_order.updated") == [
        {"type": "work_order.updated", "at": t(31), "work_order_id": spec["work_order_id"],
         "fault_ids": ["F-000001", "F-000002"]}]
    # the shared order was already urgent (F1 serious at 30): F2's serious adds no second upgrade
    assert [u["at"] for u in res.of("work_order.upgraded", work_order_id=spec["work_order_id"])] == [t(30)]


# ---------------------------------------------------------------- RT-14 titles

@pytest.mark.parametrize(("service_type", "root", "cause", "title"), [
    pytest.param("internet", "GZ-L-1-OTN", "LOS", "【集团客户一般故障】测试客户 互联网专线中断",
                 id="internet-outage"),
    pytest.param("voice", "GZ-L-1-OTN", "PACKET_LOSS", "【集团客户一般故障】测试客户 语音专线质量劣化",
                 id="voice-degradation"),
    pytest.param("sms", "GZ-L-1-PE", "GATEWAY_CONN_LOST",
                 "【集团客户一般故障】测试客户 集团短信无法连接行业网关",
                 id="sms-gateway"),
    pytest.param("circuit_lease", "GZ-L-1-OTN", "FIBER_CUT", "【集团客户一般故障】测试客户 电路出租中断",
                 id="circuit-lease"),
])
def test_RT_14_general_titles_name_customer_and_summary(service_type, root, cause, title):
    res = run(one_circuit(service_type=service_type), [alarm(0, root, cause)], until=t(1))
    assert [r["title"] for r in res.of("work_order.created")] == [title]


def test_RT_14_orders_created_when_serious_carry_the_serious_tag():
    res = run(one_circuit("provincial", "gold", hq_city="GZ"), [alarm(0, "GZ-L-1-OTN")], until=t(31))
    titles = {r["queue"]: r["title"] for r in res.of("work_order.created")}
    assert titles == {
        "prov.specialist.transmission": "【集团客户一般故障】测试客户 互联网专线中断",
        "city.GZ.monitoring": "【集团客户严重故障】测试客户 互联网专线中断",
        "prov.monitoring": "【集团客户严重故障】测试客户 互联网专线中断",
        "prov.netservice": "【集团客户严重故障】测试客户 互联网专线中断",
    }


def test_RT_14_green_channel_titles_general_then_serious():
    res = run(one_circuit("provincial", "gold", hq_city="GZ"), [complaint(0, "C1", channel="400")],
              until=t(31))
    assert res.one("fault.serious") == {"type": "fault.serious", "at": t(30), "fault_id": "F-000001",
                                        "rule": "SF-6a", "trigger": "duration"}
    titles = [(r["queue"], r["title"]) for r in res.of("work_order.created")]
    assert titles == [
        ("prov.monitoring", "【绿色通道一般故障】测试客户 互联网专线客户报障"),
        ("prov.specialist.transmission", "【绿色通道严重故障】测试客户 互联网专线客户报障"),
        ("city.GZ.monitoring", "【绿色通道严重故障】测试客户 互联网专线客户报障"),
        ("prov.netservice", "【绿色通道严重故障】测试客户 互联网专线客户报障"),
    ]


def test_RT_14_sf6b_city_fault_title_names_city_and_customer_count():
    inv = Inv()
    for i in (1, 2, 3):
        inv.customer(f"O{i}", name=f"普通{i}")
    res = run(inv, [complaint(0, "O1"), complaint(5, "O2"), complaint(10, "O3")], until=t(11))
    city_fault = res.one("fault.opened", customer_id=None)
    order = res.one("work_order.created", queue="city.GZ.monitoring")
    assert order["fault_ids"] == [city_fault["fault_id"]]
    assert order["title"] == "【集团客户一般故障】广州3家普通集团客户 互联网专线全部用户无法使用"


# ---------------------------------------------------------------- RT-15

def test_RT_15_queue_already_holding_an_order_gets_no_second_one():
    # RT-3 gives city.GZ.monitoring at opening; RT-1 names it again at serious: upgraded only.
    inv = one_circuit("provincial", "gold", hq_city="GZ")
    res = run(inv, [alarm(0, "GZ-L-1-CPE")], until=t(31))
    mons = res.of("work_order.created", queue="city.GZ.monitoring")
    assert [(m["rule"], m["priority"], m["cc"]) for m in mons] == [("RT-3", "normal", [])]
    assert res.of("work_order.upgraded")[0] == {"type": "work_order.upgraded", "at": t(30),
                                                "work_order_id": mons[0]["work_order_id"],
                                                "priority": "urgent"}
    queues = [r["queue"] for r in res.of("work_order.created")]
    assert len(queues) == len(set(queues))


def test_RT_15_escalation_to_a_held_prov_monitoring_adds_no_order():
    inv = one_circuit("city", "standard", span="cross_province", z_city="湖南长沙")
    esc = {"kind": "escalate", "at": t(5), "select": {"fault_id": "F-000001"}, "reason": "ES-4"}
    res = run(inv, [alarm(0, "GZ-L-1-OTN"), esc], until=t(6))
    assert res.one("escalation") == {"type": "escalation", "at": t(5), "fault_id": "F-000001",
                                     "reason": "ES-4", "to": "prov.monitoring"}
    assert [r["rule"] for r in res.of("work_order.created", queue="prov.monitoring")] == ["RT-9"]


def test_RT_15_specialist_order_is_per_incident_a_later_incident_gets_its_own():
    inv = Inv().customer("C1", name="甲").customer("C2", name="乙")
    inv.circuit("A", "C1", paths=[["A-CPE", "SH-OTN", "A-PE"]])
    inv.circuit("B", "C2", paths=[["B-CPE", "SH-OTN", "B-PE"], ["B-CPE", "B-OTN2", "B-PE"]])
    shared = alarm(0, "SH-OTN")
    late = alarm(10, "B-OTN2")                    # B goes down at 10: root B-OTN2, another incident
    res = run(inv, [shared, late], until=t(11))
    specs = res.of("work_order.created", queue="city.GZ.specialist.transmission")
    assert [(s["work_order_id"], s["fault_ids"]) for s in specs] == [("W-000001", ["F-000001"]),
                                                                      ("W-000002", ["F-000002"])]
    res.none("work_order.updated")


# ---------------------------------------------------------------- RT-16

def test_RT_16_sf6b_fault_goes_to_city_monitoring():
    inv = Inv()
    for i in (1, 2, 3):
        inv.customer(f"O{i}", name=f"普通{i}")
    res = run(inv, [complaint(0, "O1", city="FS"), complaint(10, "O2", city="FS"),
                    complaint(30, "O3", city="FS")], until=t(31))
    city_fault = res.one("fault.opened", customer_id=None)
    assert city_fault["fault_id"] == "F-000004" and city_fault["city"] == "FS"
    assert summary(res, "F-000004") == [("city.FS.monitoring", "RT-16", [], "normal")]
    # each ordinary customer's own complaint fault went by RT-8
    assert summary(res, "F-000001") == [("city.FS.specialist.transmission", "RT-8", [], "normal"),
                                        ("city.FS.netservice", "RT-8", [], "normal")]


def test_RT_16_sf6b_fault_serious_adds_prov_monitoring_and_no_rt1_queues():
    inv = Inv()
    for i in (1, 2, 3):
        inv.customer(f"O{i}", name=f"普通{i}")
    res = run(inv, [complaint(0, "O1"), complaint(1, "O2"), complaint(2, "O3")], until=t(33))
    serious = res.one("fault.serious")
    assert serious == {"type": "fault.serious", "at": t(32), "fault_id": "F-000004", "rule": "SF-6b",
                       "trigger": "duration"}
    assert summary(res, "F-000004") == [("city.GZ.monitoring", "RT-16", [], "normal"),
                                        ("prov.monitoring", "RT-12", [], "urgent")]


# ---------------------------------------------------------------- RT-17

def test_RT_17_prov_netservice_named_by_rt1_and_tm4_is_rule_rt1_with_arrive_by():
    inv = one_circuit("provincial", "gold", hq_city="GZ")    # customer side at HQ: team = prov.netservice
    res = run(inv, [alarm(0, "GZ-L-1-CPE")], until=t(31))
    order = res.one("work_order.created", queue="prov.netservice")
    assert order == {"type": "work_order.created", "at": t(30), "work_order_id": order["work_order_id"],
                     "fault_ids": ["F-000001"], "queue": "prov.netservice", "cc": ["prov.netservice"],
                     "priority": "urgent", "title": "【集团客户严重故障】测试客户 互联网专线中断",
                     "rule": "RT-1", "arrive_by": t(40)}


def test_RT_17_prov_netservice_made_only_by_tm4_is_rule_tm4_with_arrive_by():
    res = run(one_circuit("provincial", "gold", hq_city="GZ"), [alarm(0, "GZ-L-1-OTN")], until=t(31))
    order = res.one("work_order.created", queue="prov.netservice")
    assert (order["rule"], order["cc"], order["priority"], order["arrive_by"]) == (
        "TM-4", [], "urgent", t(40))


def test_RT_17_held_prov_netservice_upgrade_carries_arrive_by():
    inv = one_circuit("provincial", "diamond", hq_city="GZ")   # RT-5: prov.netservice at opening
    res = run(inv, [alarm(0, "GZ-L-1-CPE")], until=t(31))
    ns = res.one("work_order.created", queue="prov.netservice")
    assert (ns["rule"], ns["priority"], "arrive_by" in ns) == ("RT-5", "normal", False)
    ups = {u["work_order_id"]: u for u in res.of("work_order.upgraded")}
    assert ups[ns["work_order_id"]] == {"type": "work_order.upgraded", "at": t(30),
                                        "work_order_id": ns["work_order_id"], "priority": "urgent",
                                        "arrive_by": t(40)}
    mon = res.one("work_order.created", queue="city.GZ.monitoring")
    assert "arrive_by" not in ups[mon["work_order_id"]]
    assert len(res.of("work_order.created", queue="prov.netservice")) == 1


def test_RT_17_prov_monitoring_named_by_cp2_and_rt9_is_rule_rt9():
    inv = one_circuit("city", "standard", span="cross_province", z_city="湖南长沙")
    res = run(inv, [complaint(0, "C1", channel="400", scope="partial")], until=t(1))
    assert summary(res) == [("prov.monitoring", "RT-9", [], "normal")]
    assert res.one("work_order.created")["title"] == "【绿色通道一般故障】测试客户 互联网专线客户报障"
