"""RULES.md §6 escalation from city to province: ES-1…ES-7."""

import pytest
from scenario import Inv, action, alarm, complaint, run, t

from shared.rulebook import parse_rulebook

CITY_SOURCE_RULEBOOK = parse_rulebook({"extends": "builtin", "city_sources": {"gz-city-nms": "GZ"}})


def esc(res) -> list[tuple[str, str, str, str]]:
    return [(r["at"], r["fault_id"], r["reason"], r["to"]) for r in res.of("escalation")]


def one_circuit(level="city", grade="standard", *, hq_city=None, span="local", z_city=None,
                service_type="internet", paths=None) -> Inv:
    inv = Inv().customer("C1", level, grade, name="测试客户", hq_city=hq_city)
    inv.circuit("GZ-L-1", "C1", service_type, span=span, z_city=z_city,
                paths=paths or [["GZ-L-1-CPE", "GZ-L-1-OTN", "GZ-L-1-PE"]])
    return inv


# ---------------------------------------------------------------- ES-1

@pytest.mark.parametrize(("level", "grade", "hq", "channel", "first_queue"), [
    pytest.param("city", "diamond", None, "400", "city.GZ.monitoring", id="diamond-400"),
    pytest.param("city", "diamond", None, "direct", "city.GZ.monitoring", id="diamond-direct"),
    pytest.param("city", "diamond", None, "account_manager", "city.GZ.monitoring",
                 id="diamond-account-manager"),
])
def test_ES_1_key_customer_complaint_taken_by_city_is_escalated_at_once(level, grade, hq, channel,
                                                                        first_queue):
    res = run(one_circuit(level, grade, hq_city=hq), [complaint(3, "C1", channel=channel, scope="partial")],
              until=t(4))
    assert esc(res) == [(t(3), "F-000001", "ES-1", "prov.monitoring")]
    orders = [(r["queue"], r["rule"], r["cc"], r["priority"], r["title"])
              for r in res.of("work_order.created")]
    green = "【绿色通道一般故障】测试客户 互联网专线客户报障"
    assert orders == [(first_queue, "CP-2", [], "normal", green),
                      ("prov.monitoring", "ES-1", [], "normal", green)]
    # record order: escalation, then its work order
    types = res.types()
    assert types.index("escalation") == types.index("work_order.created") + 1


@pytest.mark.parametrize(("level", "grade", "hq", "root", "first"), [
    pytest.param("city", "diamond", None, "GZ-L-1-CPE", ["city.GZ.netservice", "city.GZ.monitoring"],
                 id="diamond-customer-side"),
    pytest.param("provincial", "gold", "SZ", "GZ-L-1-CPE", ["city.GZ.monitoring"],
                 id="provincial-branch-customer-side"),
])
def test_ES_1_key_fault_from_a_city_alarm_source_is_escalated(level, grade, hq, root, first):
    line = alarm(0, root, source="gz-city-nms")
    res = run(one_circuit(level, grade, hq_city=hq), [line], until=t(1), rulebook=CITY_SOURCE_RULEBOOK)
    assert esc(res) == [(t(0), "F-000001", "ES-1", "prov.monitoring")]
    assert [r["queue"] for r in res.of("work_order.created")] == first + ["prov.monitoring"]
    pm = res.one("work_order.created", queue="prov.monitoring")
    assert (pm["rule"], pm["priority"], pm["cc"], pm["title"]) == (
        "ES-1", "normal", [], "【集团客户一般故障】测试客户 互联网专线中断")


def test_ES_1_a_cc_to_prov_monitoring_is_not_an_order_held_by_a_prov_queue():
    inv = one_circuit("city", "diamond", span="cross_city", z_city="SZ")
    res = run(inv, [alarm(0, "GZ-L-1-CPE", source="gz-city-nms")], until=t(1), rulebook=CITY_SOURCE_RULEBOOK)
    assert [(r["queue"], r["rule"], r["cc"]) for r in res.of("work_order.created")] == [
        ("city.GZ.netservice", "RT-5", []), ("city.GZ.monitoring", "RT-5", []),
        ("city.SZ.monitoring", "RT-10", ["prov.monitoring"]), ("prov.monitoring", "ES-1", [])]
    assert esc(res) == [(t(0), "F-000001", "ES-1", "prov.monitoring")]


@pytest.mark.parametrize(("source", "rulebook"), [
    pytest.param("gz-city-nms", None, id="builtin-assigns-no-city-source"),
    pytest.param("nms-1", CITY_SOURCE_RULEBOOK, id="province-source"),
])
def test_ES_1_not_for_alarms_from_province_sources(source, rulebook):
    line = alarm(0, "GZ-L-1-CPE", source=source)
    res = run(one_circuit("city", "diamond"), [line], until=t(1), rulebook=rulebook)
    res.none("escalation")


@pytest.mark.parametrize(("level", "grade", "span", "z", "root"), [
    pytest.param("city", "gold", "local", None, "GZ-L-1-CPE", id="not-a-key-fault"),
    pytest.param("city", "diamond", "local", None, "GZ-L-1-OTN", id="diamond-core-prov-specialist-holds"),
    pytest.param("city", "standard", "cross_province", "湖南长沙", "GZ-L-1-CPE",
                 id="cross-province-RT-9-holds"),
])
def test_ES_1_not_when_no_key_fault_or_a_prov_queue_already_holds_an_order(level, grade, span, z, root):
    line = alarm(0, root, source="gz-city-nms")
    res = run(one_circuit(level, grade, span=span, z_city=z), [line], until=t(1),
              rulebook=CITY_SOURCE_RULEBOOK)
    res.none("escalation")


def test_ES_1_not_for_a_hotline_complaint_of_a_diamond_customer():
    res = run(one_circuit("city", "diamond"), [complaint(0, "C1", channel="10086-8", scope="partial")],
              until=t(1))
    res.none("escalation")


# ---------------------------------------------------------------- ES-2 (TM-8)

def test_ES_2_city_level_cross_city_interruption_open_8_hours_is_escalated():
    inv = one_circuit("city", "gold", span="cross_city", z_city="SZ", service_type="data")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(8 * 60 + 1))
    assert esc(res) == [(t(480), "F-000001", "ES-2", "prov.monitoring")]
    pm = res.one("work_order.created", queue="prov.monitoring")
    assert (pm["at"], pm["rule"], pm["priority"], pm["cc"], pm["title"]) == (
        t(480), "ES-2", "normal", [], "【集团客户一般故障】测试客户 数据专线中断")


def test_ES_2_with_sf5_8h_threshold_serious_first_then_escalation_without_second_order():
    inv = one_circuit("city", "gold", span="cross_city", z_city="SZ", service_type="circuit_lease")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(8 * 60))
    assert res.one("fault.serious") == {"type": "fault.serious", "at": t(480), "fault_id": "F-000001",
                                        "rule": "SF-5", "trigger": "duration"}
    types = res.types()
    assert types.index("fault.serious") < types.index("escalation")
    assert esc(res) == [(t(480), "F-000001", "ES-2", "prov.monitoring")]
    assert [r["rule"] for r in res.of("work_order.created", queue="prov.monitoring")] == ["RT-12"]


@pytest.mark.parametrize(("level", "span", "z", "end_min"), [
    pytest.param("city", "cross_city", "SZ", 479, id="ended-before-8h"),
    pytest.param("provincial", "cross_city", "SZ", None, id="provincial-customer"),
    pytest.param("city", "local", None, None, id="local-circuit"),
])
def test_ES_2_not_when_ended_or_not_a_city_level_cross_city_circuit(level, span, z, end_min):
    inv = one_circuit(level, "gold", span=span, z_city=z, service_type="data", hq_city="GZ")
    raise_line = alarm(0, "GZ-L-1-OTN")
    lines = [raise_line]
    if end_min is not None:
        lines.append({**raise_line, "at": t(end_min),
                      "alarm": {**raise_line["alarm"], "state": "cleared", "event_time": t(end_min)}})
    res = run(inv, lines, until=t(600))
    assert [e for e in esc(res) if e[2] == "ES-2"] == []


# ---------------------------------------------------------------- ES-3

def test_ES_3_province_maintained_root_with_only_city_orders_is_escalated():
    inv = one_circuit("city", "standard", paths=[["GZ-L-1-CPE", "GZ-L-1-POTN", "GZ-L-1-PE"]])
    res = run(inv, [alarm(0, "GZ-L-1-POTN")], until=t(1))
    assert esc(res) == [(t(0), "F-000001", "ES-3", "prov.monitoring")]
    assert [(r["queue"], r["rule"], r["priority"]) for r in res.of("work_order.created")] == [
        ("city.GZ.specialist.transmission", "RT-6", "normal"), ("prov.monitoring", "ES-3", "normal")]


@pytest.mark.parametrize(("level", "root", "paths"), [
    pytest.param("city", "GZ-L-1-OTN", None, id="city-maintained-root"),
    pytest.param("provincial", "GZ-L-1-POTN", [["GZ-L-1-CPE", "GZ-L-1-POTN", "GZ-L-1-PE"]],
                 id="prov-queue-holds"),
])
def test_ES_3_not_when_root_is_city_maintained_or_a_prov_queue_holds(level, root, paths):
    res = run(one_circuit(level, "gold", hq_city="GZ", paths=paths), [alarm(0, root)], until=t(1))
    res.none("escalation")


@pytest.mark.parametrize(("source", "rulebook", "reasons", "queues"), [
    pytest.param("nms-1", None, ["ES-3"], ["city.GZ.monitoring", "prov.monitoring"], id="ES-3"),
    pytest.param("gz-city-nms", CITY_SOURCE_RULEBOOK, ["ES-1"], ["city.GZ.monitoring", "prov.monitoring"],
                 id="ES-1-first-then-no-ES-3"),
])
def test_ES_3_is_checked_after_ES_1(source, rulebook, reasons, queues):
    # provincial customer away from its HQ, customer-side root maintained by the province: RT-3
    inv = one_circuit("provincial", "gold", hq_city="SZ", paths=[["GZ-L-1-CPE-POTN", "GZ-L-1-OTN"]])
    res = run(inv, [alarm(0, "GZ-L-1-CPE-POTN", source=source)], until=t(1), rulebook=rulebook)
    assert [e[2] for e in esc(res)] == reasons
    assert [r["queue"] for r in res.of("work_order.created")] == queues
    assert res.one("work_order.created", queue="prov.monitoring")["rule"] == reasons[0]


# ---------------------------------------------------------------- ES-4…ES-7 (operator)

@pytest.mark.parametrize("reason", ["ES-4", "ES-5", "ES-6", "ES-7"])
def test_ES_4_to_ES_7_operator_escalation_gives_prov_monitoring_an_order(reason):
    res = run(one_circuit("city", "standard"),
              [alarm(0, "GZ-L-1-CPE"), action(5, "escalate", {"circuit_id": "GZ-L-1"}, reason=reason)],
              until=t(6))
    assert esc(res) == [(t(5), "F-000001", reason, "prov.monitoring")]
    pm = res.one("work_order.created", queue="prov.monitoring")
    assert (pm["at"], pm["rule"], pm["priority"], pm["cc"], pm["fault_ids"], pm["title"]) == (
        t(5), reason, "normal", [], ["F-000001"], "【集团客户一般故障】测试客户 互联网专线中断")
    assert res.status == 0


def test_ES_6_escalation_of_a_serious_fault_carries_the_serious_tag():
    inv = one_circuit("city", "diamond")
    # serious at 30 (SF-3); prov.monitoring already holds the RT-12 order: no second one
    res = run(inv, [alarm(0, "GZ-L-1-OTN"), action(40, "escalate", {"fault_id": "F-000001"}, reason="ES-6")],
              until=t(41))
    assert esc(res) == [(t(40), "F-000001", "ES-6", "prov.monitoring")]
    assert [r["rule"] for r in res.of("work_order.created", queue="prov.monitoring")] == ["RT-12"]


def test_ES_7_green_complaint_escalation_order_carries_green_tag():
    inv = one_circuit("city", "gold")
    res = run(inv, [complaint(0, "C1", channel="400", scope="partial"),
                    action(5, "escalate", {"customer_id": "C1", "service_type": "internet"}, reason="ES-7")],
              until=t(6))
    pm = res.one("work_order.created", queue="prov.monitoring")
    assert (pm["rule"], pm["title"]) == ("ES-7", "【绿色通道一般故障】测试客户 互联网专线客户报障")


@pytest.mark.parametrize("reason", ["ES-4", "ES-5"])
def test_ES_4_ES_5_accepted_on_a_local_circuit(reason):
    res = run(one_circuit(), [alarm(0, "GZ-L-1-CPE"),
                              action(1, "escalate", {"fault_id": "F-000001"}, reason=reason)], until=t(2))
    assert [e[2] for e in esc(res)] == [reason]


def test_ES_5_second_escalate_with_same_reason_is_refused_with_its_line():
    res = run(one_circuit(), [
        alarm(0, "GZ-L-1-CPE"),
        action(1, "escalate", {"fault_id": "F-000001"}, reason="ES-5"),
        action(2, "escalate", {"fault_id": "F-000001"}, reason="ES-5"),
        action(3, "escalate", {"fault_id": "F-000001"}, reason="ES-6"),
    ], until=t(4))
    assert esc(res) == [(t(1), "F-000001", "ES-5", "prov.monitoring"),
                        (t(3), "F-000001", "ES-6", "prov.monitoring")]
    rejected = res.one("input.rejected")
    assert (rejected["at"], rejected["line"]) == (t(2), 3)
    assert "ES-5" in rejected["reason"]
    assert [r["rule"] for r in res.of("work_order.created", queue="prov.monitoring")] == ["ES-5"]
    assert res.status == 3


def test_ES_1_reason_cannot_be_given_by_an_operator():
    res = run(one_circuit(), [alarm(0, "GZ-L-1-CPE"),
                              action(1, "escalate", {"fault_id": "F-000001"}, reason="ES-1")], until=t(2))
    res.none("escalation")
    assert res.one("input.rejected")["line"] == 2
    assert res.status == 3
