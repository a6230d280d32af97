"""RULES.md §8 notifications: NT-1…NT-5 (SMS recipients, stages, text; phone notice)."""

import pytest
from scenario import Inv, action, alarm, complaint, run, t

PROVINCE = ["prov.gov_enterprise", "prov.network_dept", "prov.nmc", "prov.netservice"]


def city(c: str) -> list[str]:
    return [f"city.{c}.monitoring", f"city.{c}.gov_enterprise", f"city.{c}.netservice",
            f"city.{c}.maintenance"]


def one_circuit(level="provincial", grade="gold", *, hq_city="GZ", span="local", z_city=None,
                service_type="internet", name="测试客户") -> Inv:
    inv = Inv().customer("C1", level, grade, name=name, hq_city=hq_city)
    inv.circuit("GZ-L-1", "C1", service_type, span=span, z_city=z_city,
                paths=[["GZ-L-1-CPE", "GZ-L-1-OTN", "GZ-L-1-PE"]])
    return inv


def clear(line: dict, at_min: float, event_min: float | None = None) -> dict:
    ev = at_min if event_min is None else event_min
    return {**line, "at": t(at_min), "alarm": {**line["alarm"], "state": "cleared", "event_time": t(ev)}}


# ---------------------------------------------------------------- NT-1

def test_NT_1_serious_local_fault_sms_to_province_and_its_city():
    res = run(one_circuit(), [alarm(0, "GZ-L-1-OTN")], until=t(31))
    sms = res.one("sms")
    assert (sms["at"], sms["fault_id"], sms["stage"]) == (t(30), "F-000001", "new")
    assert sms["recipients"] == PROVINCE + city("GZ")


def test_NT_1_cross_city_circuit_notifies_both_cities():
    inv = one_circuit("city", "gold", hq_city=None, span="cross_city", z_city="SZ")   # important: cross_city
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(31))
    assert res.one("sms")["recipients"] == PROVINCE + city("GZ") + city("SZ")


def test_NT_1_cross_province_circuit_notifies_only_this_provinces_city():
    inv = one_circuit("city", "gold", hq_city=None, span="cross_province", z_city="湖南长沙")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(31))
    assert res.one("sms")["recipients"] == PROVINCE + city("GZ")


def test_NT_1_complaint_fault_notifies_the_complaint_city():
    inv = Inv().customer("C1", "provincial", "gold", name="测试客户", hq_city="GZ")
    res = run(inv, [complaint(0, "C1", city="FS")], until=t(31))
    sms = res.one("sms")
    assert sms["recipients"] == PROVINCE + city("FS")
    assert sms["text"] == ("【新|影响业务|严重故障|测试客户互联网专线客户报障】"
                           "2026/11/25 10:00，客户报障，已历时30分钟")


def test_NT_1_sf6b_fault_notifies_its_city():
    inv = Inv()
    for i in (1, 2, 3):
        inv.customer(f"O{i}", name=f"普通{i}")
    lines = [complaint(i, f"O{i + 1}", city="ZH") for i in range(3)]
    res = run(inv, lines, until=t(33))
    sms = res.one("sms")
    assert (sms["at"], sms["fault_id"]) == (t(32), "F-000004")
    assert sms["recipients"] == PROVINCE + city("ZH")
    assert sms["text"] == ("【新|影响业务|严重故障|珠海3家普通集团客户互联网专线全部用户无法使用】"
                           "2026/11/25 10:02，珠海3家普通集团客户报障，已历时30分钟")


def test_NT_1_no_sms_for_a_general_fault():
    line = alarm(0, "GZ-L-1-OTN")
    res = run(one_circuit(), [line, clear(line, 29)], until=t(300))
    res.none("sms")
    res.none("phone.notify")


# ---------------------------------------------------------------- NT-2

def test_NT_2_update_every_2_hours_to_the_same_list():
    inv = one_circuit("city", "gold", hq_city=None, span="cross_city", z_city="SZ")
    res = run(inv, [alarm(0, "GZ-L-1-OTN")], until=t(30 + 240))
    updates = res.of("sms", stage="update")
    assert [u["at"] for u in updates] == [t(150), t(270)]
    assert all(u["recipients"] == PROVINCE + city("GZ") + city("SZ") for u in updates)
    assert [u["text"] for u in updates] == [
        "【进展|影响业务|严重故障|测试客户互联网专线中断】2026/11/25 12:30，"
        "专线GZ-L-1，故障点GZ-L-1-OTN，已历时2小时30分钟",
        "【进展|影响业务|严重故障|测试客户互联网专线中断】2026/11/25 14:30，"
        "专线GZ-L-1，故障点GZ-L-1-OTN，已历时4小时30分钟",
    ]


def test_NT_2_stops_when_the_fault_ends():
    line = alarm(0, "GZ-L-1-OTN")
    res = run(one_circuit(), [line, clear(line, 149)], until=t(600))
    res.none("sms", stage="update")


# ---------------------------------------------------------------- NT-3

def test_NT_3_recovered_sms_when_a_serious_fault_ends():
    line = alarm(0, "GZ-L-1-OTN")
    res = run(one_circuit(), [line, clear(line, 50, event_min=45)], until=t(60))
    rec = res.one("sms", stage="recovered")
    assert rec == {"type": "sms", "at": t(50), "fault_id": "F-000001", "stage": "recovered",
                   "recipients": PROVINCE + city("GZ"),
                   "text": "【恢复|影响业务|严重故障|测试客户互联网专线中断】2026/11/25 10:50，"
                           "专线GZ-L-1，故障点GZ-L-1-OTN，历时45分钟"}


def test_NT_3_recovered_sms_when_a_serious_complaint_fault_is_resolved():
    inv = Inv().customer("C1", "city", "diamond", name="钻石客户")
    res = run(inv, [complaint(0, "C1", channel="10086-8"), action(95, "resolve", {"fault_id": "F-000001"})],
              until=t(100))
    assert [(r["at"], r["stage"]) for r in res.of("sms")] == [(t(30), "new"), (t(95), "recovered")]
    assert res.of("sms")[-1]["text"] == \
        "【恢复|影响业务|严重故障|钻石客户互联网专线客户报障】2026/11/25 11:35，客户报障，历时1小时35分钟"


# ---------------------------------------------------------------- NT-4

def test_NT_4_text_of_the_contract_example():
    inv = Inv().customer("C-NH", "provincial", "gold", name="南方航空集团公司", hq_city="GZ")
    inv.resource("GZ-CPE-0001", "cpe").resource("GZ-OTN-A:1-3-1", "transmission", maintainer="province")
    inv.resource("GZ-OTN-B:2-1-4", "transmission", maintainer="province")
    inv.resource("GZ-PE-01:GE0/0/1", "data").resource("GZ-PE-02:GE0/0/1", "data")
    inv.circuit("GZ-INT-0001", "C-NH", paths=[["GZ-CPE-0001", "GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1"],
                                              ["GZ-CPE-0001", "GZ-OTN-B:2-1-4", "GZ-PE-02:GE0/0/1"]])
    res = run(inv, [alarm(0.0833, "GZ-OTN-A:1-3-1", event_min=0),
                    alarm(0.0833, "GZ-OTN-B:2-1-4", event_min=0)], until=t(31))
    assert res.one("sms")["text"] == (
        "【新|影响业务|严重故障|南方航空集团公司互联网专线中断】2026/11/25 10:00，"
        "专线GZ-INT-0001，故障点GZ-OTN-B:2-1-4，已历时30分钟")


@pytest.mark.parametrize(("service_type", "root", "cause", "head"), [
    pytest.param("voice", "GZ-L-1-OTN", "LOS", "测试客户语音专线中断", id="voice"),
    pytest.param("sms", "GZ-L-1-PE", "GATEWAY_CONN_LOST", "测试客户集团短信无法连接行业网关",
                 id="sms-gateway"),
    pytest.param("gprs_apn", "GZ-L-1-OTN", "APN_DOWN", "测试客户GPRS企业APN中断", id="gprs-apn"),
])
def test_NT_4_summary_names_the_service_and_how_it_is_down(service_type, root, cause, head):
    res = run(one_circuit(service_type=service_type), [alarm(0, root, cause)], until=t(31))
    assert res.one("sms")["text"] == (
        f"【新|影响业务|严重故障|{head}】2026/11/25 10:00，专线GZ-L-1，故障点{root}，已历时30分钟")


def test_NT_4_new_stamp_is_opened_at_for_a_late_serious_confirmation():
    confirm = action(7, "confirm", {"circuit_id": "GZ-L-1"}, impact="full_block")
    res = run(one_circuit(), [alarm(0, "GZ-L-1-OTN"), confirm], until=t(8))
    assert res.one("sms")["text"] == (
        "【新|影响业务|严重故障|测试客户互联网专线中断】2026/11/25 10:00，"
        "专线GZ-L-1，故障点GZ-L-1-OTN，已历时7分钟")


# ---------------------------------------------------------------- NT-5

@pytest.mark.parametrize(("level", "grade", "hq"), [
    pytest.param("provincial", "gold", "GZ", id="provincial"),
    pytest.param("city", "diamond", None, id="city-level-diamond"),
])
def test_NT_5_serious_fault_phones_prov_netservice(level, grade, hq):
    res = run(one_circuit(level, grade, hq_city=hq), [alarm(0, "GZ-L-1-OTN")], until=t(31))
    assert res.of("phone.notify") == [{"type": "phone.notify", "at": t(30), "fault_id": "F-000001",
                                       "target": "prov.netservice"}]
    types = res.types()
    assert types.index("sms") + 1 == types.index("phone.notify")
