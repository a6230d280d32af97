"""RULES.md §3 severity rules SV-1 … SV-9."""

import pytest
from scenario import Inv, action, alarm, complaint, raise_clear, run, t


def serious_of(res, fid: str) -> tuple | None:
    found = res.of("fault.serious", fault_id=fid)
    assert len(found) <= 1, found
    return (found[0]["at"], found[0]["rule"], found[0]["trigger"]) if found else None


def line(level="provincial", grade="gold", service_type="internet", span="local", z_city=None) -> Inv:
    inv = Inv().customer("X", level, grade, hq_city="GZ" if level == "provincial" else None)
    return inv.circuit("X-1", "X", service_type, span=span, z_city=z_city)


SEL = {"circuit_id": "X-1"}


# ---------------------------------------------------------------------- SV-1


@pytest.mark.parametrize(("events", "kind", "expected"), [
    pytest.param([alarm(0, "X-1-OTN")], "outage", (t(30), "SF-3", "duration"), id="outage-at-30-min"),
    pytest.param([alarm(0, "X-1-OTN", "PACKET_LOSS")], "degradation", None, id="degradation-never"),
    pytest.param([alarm(0, "X-1-OTN", "HIGH_LATENCY")], "degradation", None, id="degradation-never-2"),
    pytest.param([complaint(3, "X", service_type="voice")], "complaint", (t(33), "SF-6a", "duration"),
                 id="sf6a-complaint-at-30-min"),
])
def test_SV_1_trigger_by_duration(events, kind, expected):
    res = run(line(), events, until=t(600))
    fid = res.one("fault.opened", kind=kind)["fault_id"]
    assert serious_of(res, fid) == expected


def test_SV_1_serious_never_goes_back():
    res = run(line(), raise_clear("X-1-OTN", 0, 40) + [action(45, "confirm", SEL, impact="no_impact")],
              until=t(120))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(30), "SF-3", "duration")
    assert res.one("fault.cleared", fault_id=fid)["severity"] == "serious"


# ---------------------------------------------------------------------- SV-2


@pytest.mark.parametrize(("inv", "expected"), [
    pytest.param(line("provincial", "gold"), (t(10), "SF-3", "confirmed"), id="provincial-at-once"),
    pytest.param(line("city", "diamond"), (t(10), "SF-3", "confirmed"), id="diamond-at-once"),
    pytest.param(line("provincial", "gold", "voice"), (t(10), "SF-4", "confirmed"), id="provincial-voice"),
    pytest.param(line("city", "gold", span="cross_city", z_city="FS"), (t(30), "SF-3", "duration"),
                 id="city-level-important-not-eligible-waits-for-tm1"),
    pytest.param(line("provincial", "gold", "data"), None, id="no-sf-row-for-data"),
    pytest.param(line("city", "standard", "circuit_lease", "cross_city", "FS"), (t(480), "SF-5", "duration"),
                 id="sf5-8h-case-not-shortened"),
    pytest.param(line("provincial", "gold", "circuit_lease"), (t(10), "SF-5", "confirmed"),
                 id="sf5-provincial-30m-case"),
])
def test_SV_2_full_block_confirmation_on_provincial_or_diamond(inv, expected):
    res = run(inv, [alarm(0, "X-1-OTN"), action(10, "confirm", SEL, impact="full_block")], until=t(600))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == expected
    res.none("input.rejected")


def test_SV_2_full_block_on_a_provincial_sf6a_complaint_fault():
    res = run(Inv().customer("P", "provincial"), [
        complaint(0, "P"),
        action(5, "confirm", {"customer_id": "P", "service_type": "internet"}, impact="full_block"),
    ], until=t(120))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(5), "SF-6a", "confirmed")


def test_SV_2_not_on_a_degradation_fault():
    res = run(line(), [alarm(0, "X-1-OTN", "PACKET_LOSS"), action(10, "confirm", SEL, impact="full_block")],
              until=t(120))
    res.none("fault.serious")


def test_SV_2_not_on_an_sf6b_fault_without_customer():
    inv = Inv().customer("O1").customer("O2").customer("O3")
    res = run(inv, [complaint(0, "O1"), complaint(1, "O2"), complaint(2, "O3"),
                    action(5, "confirm", {"city": "GZ", "service_type": "internet"}, impact="full_block")],
              until=t(60))
    f = res.one("fault.opened", customer_id=None)
    assert serious_of(res, f["fault_id"]) == (t(32), "SF-6b", "duration")


# ---------------------------------------------------------------------- SV-3


def test_SV_3_no_impact_before_threshold_cancels_tm1():
    res = run(line(), [alarm(0, "X-1-OTN"), action(10, "confirm", SEL, impact="no_impact")], until=t(600))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) is None
    res.none("fault.cleared")                                 # nothing else: the fault stays open


def test_SV_3_later_full_block_still_applies_sv2():
    res = run(line(), [alarm(0, "X-1-OTN"), action(10, "confirm", SEL, impact="no_impact"),
                       action(45, "confirm", SEL, impact="full_block")], until=t(600))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(45), "SF-3", "confirmed")


def test_SV_3_no_impact_on_an_important_city_level_customer_also_cancels():
    res = run(line("city", "gold", span="cross_city", z_city="FS"),
              [alarm(0, "X-1-OTN"), action(10, "confirm", SEL, impact="no_impact")], until=t(600))
    res.none("fault.serious")


@pytest.mark.parametrize(("inv", "impact", "at"), [
    pytest.param(line(), "no_impact", 40, id="no_impact-after-serious"),
    pytest.param(line("provincial", "gold", "data"), "no_impact", 10, id="no_impact-without-tm1"),
    pytest.param(line("city", "standard"), "full_block", 10, id="full_block-on-ordinary"),
])
def test_SV_3_confirm_that_neither_sv2_nor_sv3_covers_changes_nothing(inv, impact, at):
    base = [alarm(0, "X-1-OTN")]
    plain = run(inv, base, until=t(600))
    confirmed = run(inv, base + [action(at, "confirm", SEL, impact=impact)], until=t(600))
    strip = [(r["type"], r.get("fault_id"), r.get("at")) for r in plain.records]
    assert [(r["type"], r.get("fault_id"), r.get("at")) for r in confirmed.records] == strip
    confirmed.none("input.rejected")


# ---------------------------------------------------------------------- SV-4


def test_SV_4_not_ours_keeps_history_and_deadlines():
    res = run(line(), [alarm(0, "X-1-OTN", alarm_id="a"),
                       action(40, "attribution", SEL, attribution="not_ours"),
                       alarm(200, "X-1-OTN", state="cleared", alarm_id="a")], until=t(300))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(30), "SF-3", "duration")
    attr = res.one("fault.attributed", fault_id=fid)
    assert (attr["attribution"], attr["at"]) == ("not_ours", t(40))
    assert [r["at"] for r in res.of("sms", fault_id=fid, stage="update")] == [t(150)]   # TM-6 still runs
    cleared = res.one("fault.cleared", fault_id=fid)
    assert cleared["severity"] == "serious" and cleared["duration_s"] == 200 * 60
    assert res.one("report.due", fault_id=fid)["due"] == "2026-11-27T13:20:00+08:00"    # TM-7 kept


def test_SV_4_not_ours_before_the_threshold_still_turns_serious():
    res = run(line(), [alarm(0, "X-1-OTN"), action(5, "attribution", SEL, attribution="not_ours")],
              until=t(60))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(30), "SF-3", "duration")


# ---------------------------------------------------------------------- SV-5


def test_SV_5_complaint_joins_the_open_circuit_fault_without_new_fault_or_order():
    res = run(line(), [alarm(0, "X-1-OTN"), complaint(5, "X", channel="400")], until=t(20))
    assert len(res.of("fault.opened")) == 1
    assert [r for r in res.records if r["at"] == t(5)] == []       # nothing at the complaint
    res.none("input.rejected")


@pytest.mark.parametrize(("city", "joins"), [
    pytest.param("GZ", True, id="a-end-city"),
    pytest.param("FS", True, id="z-end-city"),
    pytest.param("SZ", False, id="other-city-opens-its-own"),
])
def test_SV_5_circuit_with_an_end_in_the_complaint_city(city, joins):
    inv = line("city", "standard", span="cross_city", z_city="FS")
    res = run(inv, [alarm(0, "X-1-OTN"), complaint(5, "X", city)], until=t(10))
    complaints = res.of("fault.opened", kind="complaint")
    expected = [] if joins else [(city, None, t(5))]
    assert [(r["city"], r["circuit_id"], r["opened_at"]) for r in complaints] == expected


def test_SV_5_second_complaint_joins_the_customers_complaint_fault():
    res = run(Inv().customer("O"), [complaint(0, "O"), complaint(5, "O", channel="400")], until=t(10))
    opened = res.one("fault.opened")
    assert opened["opened_at"] == t(0)
    assert len(res.of("work_order.created")) == len(res.of("work_order.created", at=t(0)))


def test_SV_5_other_service_type_or_city_does_not_join():
    res = run(Inv().customer("O"), [complaint(0, "O"), complaint(5, "O", service_type="voice"),
                                    complaint(6, "O", city="SZ")], until=t(10))
    assert [(r["service_type"], r["city"]) for r in res.of("fault.opened")] == \
        [("internet", "GZ"), ("voice", "GZ"), ("internet", "SZ")]


def test_SV_5_joins_the_earliest_opened_of_several():
    inv = (Inv().customer("P", "provincial", hq_city="GZ")
           .circuit("P-D1", "P", "data").circuit("P-D2", "P", "data"))
    res = run(inv, [alarm(0, "P-D2-OTN"), alarm(3, "P-D1-OTN"), complaint(10, "P", service_type="data")],
              until=t(60))
    f_d2 = res.one("fault.opened", circuit_id="P-D2")["fault_id"]
    f_d1 = res.one("fault.opened", circuit_id="P-D1")["fault_id"]
    assert serious_of(res, f_d2) == (t(40), "SF-6a", "duration")
    assert serious_of(res, f_d1) is None


@pytest.mark.parametrize(("first", "kind"), [
    pytest.param(alarm(0, "X-1-OTN"), "outage", id="outage-without-sf-row"),
    pytest.param(alarm(0, "X-1-OTN", "PACKET_LOSS"), "degradation", id="degradation"),
])
def test_SV_5_sf6a_complaint_gives_the_joined_general_fault_tm1(first, kind):
    res = run(line("provincial", "gold", "data"), [first, complaint(8, "X", service_type="data")],
              until=t(60))
    fid = res.one("fault.opened", kind=kind)["fault_id"]
    assert len(res.of("fault.opened")) == 1
    assert serious_of(res, fid) == (t(38), "SF-6a", "duration")


def test_SV_5_running_tm1_is_not_restarted_by_the_complaint():
    res = run(line(), [alarm(0, "X-1-OTN"), complaint(10, "X")], until=t(60))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(30), "SF-3", "duration")


def test_SV_5_cancelled_tm1_is_restarted_by_an_sf6a_complaint():
    res = run(line(), [alarm(0, "X-1-OTN"), action(5, "confirm", SEL, impact="no_impact"),
                       complaint(10, "X")], until=t(60))
    fid = res.one("fault.opened")["fault_id"]
    assert serious_of(res, fid) == (t(40), "SF-6a", "duration")


def test_SV_5_partial_complaint_does_not_start_tm1():
    res = run(line("provincial", "gold", "data"), [alarm(0, "X-1-OTN"),
                                                   complaint(8, "X", service_type="data", scope="partial")],
              until=t(120))
    res.none("fault.serious")


def test_SV_5_joined_complaints_still_count_toward_sf6b():
    inv = Inv()
    for i in (1, 2, 3):
        inv.customer(f"O{i}").circuit(f"O{i}-INT", f"O{i}")
    res = run(inv, [alarm(0, "O1-INT-OTN"), alarm(0, "O2-INT-OTN"), complaint(1, "O1"), complaint(2, "O2"),
                    complaint(3, "O3")], until=t(60))
    sf6b = res.one("fault.opened", customer_id=None)
    assert (sf6b["opened_at"], sf6b["city"], sf6b["service_type"]) == (t(3), "GZ", "internet")
    assert serious_of(res, sf6b["fault_id"]) == (t(33), "SF-6b", "duration")


# ---------------------------------------------------------------------- SV-6


def six_b() -> Inv:
    inv = Inv().customer("P", "provincial", hq_city="GZ")
    for i in range(1, 6):
        inv.customer(f"O{i}")
    return inv


THREE = [complaint(0, "O1"), complaint(1, "O2"), complaint(2, "O3")]


def test_SV_6_sf6b_fault_is_its_own_fault_and_complaint_faults_stay():
    res = run(six_b(), THREE, until=t(10))
    opened = res.of("fault.opened")
    assert [r["customer_id"] for r in opened] == ["O1", "O2", "O3", None]
    sf6b = opened[3]
    assert {k: sf6b[k] for k in ("kind", "circuit_id", "customer_id", "important", "city", "service_type",
                                 "cause_side", "root_resource", "opened_at")} == {
        "kind": "complaint", "circuit_id": None, "customer_id": None, "important": False, "city": "GZ",
        "service_type": "internet", "cause_side": "unknown", "root_resource": None, "opened_at": t(2)}
    res.none("fault.cleared")
    assert res.one("work_order.created", fault_ids=[sf6b["fault_id"]])["queue"] == "city.GZ.monitoring"


def test_SV_6_later_ordinary_complaints_join_and_open_no_second_sf6b():
    res = run(six_b(), THREE + [complaint(5, "O4"), complaint(6, "O5"), complaint(7, "O1")], until=t(20))
    assert [r["customer_id"] for r in res.of("fault.opened")] == ["O1", "O2", "O3", None]


def test_SV_6_important_customer_complaint_opens_its_own_fault():
    res = run(six_b(), THREE + [complaint(5, "P")], until=t(20))
    own = res.one("fault.opened", customer_id="P")
    assert own["opened_at"] == t(5) and own["kind"] == "complaint"


def test_SV_6_ends_when_every_listed_complaint_fault_ended():
    resolves = [action(5 + i, "resolve", {"customer_id": f"O{i + 1}", "service_type": "internet"})
                for i in range(3)]
    res = run(six_b(), THREE + resolves, until=t(20))
    sf6b = res.one("fault.opened", customer_id=None)["fault_id"]
    cleared = res.one("fault.cleared", fault_id=sf6b)
    assert (cleared["at"], cleared["ended_at"], cleared["duration_s"]) == (t(7), t(7), 300)
    assert cleared["severity"] == "general"


def test_SV_6_operator_resolves_it_by_city_and_service_type():
    res = run(six_b(), THREE + [action(40, "resolve", {"city": "GZ", "service_type": "internet"})],
              until=t(60))
    sf6b = res.one("fault.opened", customer_id=None)["fault_id"]
    cleared = res.one("fault.cleared")
    assert (cleared["fault_id"], cleared["ended_at"], cleared["severity"]) == (sf6b, t(40), "serious")
    res.none("input.rejected")


def test_SV_6_after_it_ends_a_new_sf6b_can_open():
    events = THREE + [action(5, "resolve", {"city": "GZ", "service_type": "internet"}),
                      complaint(10, "O4"), complaint(11, "O5"), complaint(12, "O1")]
    res = run(six_b(), events, until=t(20))
    assert [r["opened_at"] for r in res.of("fault.opened", customer_id=None)] == [t(2), t(12)]


# ---------------------------------------------------------------------- SV-7


@pytest.mark.parametrize("service_type", ["data", "internet", "voice", "sms", "gprs_apn", "circuit_lease"])
def test_SV_7_sf6a_and_sf6b_apply_whatever_the_service_type(service_type):
    inv = six_b()
    res = run(inv, [complaint(0, "P", service_type=service_type)]
              + [complaint(i, f"O{i}", service_type=service_type) for i in (1, 2, 3)], until=t(60))
    p = res.one("fault.opened", customer_id="P")["fault_id"]
    sf6b = res.one("fault.opened", customer_id=None)["fault_id"]
    assert serious_of(res, p) == (t(30), "SF-6a", "duration")
    assert serious_of(res, sf6b) == (t(33), "SF-6b", "duration")


# ---------------------------------------------------------------------- SV-8


def test_SV_8_attribution_recorded_only_when_it_changes_and_routing_unchanged():
    events = [alarm(0, "X-1-OTN"),
              action(5, "attribution", SEL, attribution="ours"),        # the default: no change
              action(6, "attribution", SEL, attribution="not_ours"),
              action(7, "attribution", SEL, attribution="not_ours"),
              action(8, "attribution", SEL, attribution="ours")]
    res = run(line(), events, until=t(9))
    fid = res.one("fault.opened")["fault_id"]
    assert [(r["at"], r["attribution"], r["fault_id"]) for r in res.of("fault.attributed")] == \
        [(t(6), "not_ours", fid), (t(8), "ours", fid)]
    assert [r["type"] for r in res.records if t(5) <= r["at"] <= t(9)] == ["fault.attributed"] * 2
    res.none("input.rejected")


# ---------------------------------------------------------------------- SV-9


def test_SV_9_general_complaint_fault_joins_the_new_circuit_fault():
    inv = Inv().customer("O").circuit("O-INT", "O")
    res = run(inv, [complaint(0, "O"), alarm(6, "O-INT-OTN", event_min=4)], until=t(10))
    cf = res.one("fault.opened", kind="complaint")
    assert cf["circuit_id"] == "O-INT"
    out = res.one("fault.opened", kind="outage")
    cleared = res.one("fault.cleared", fault_id=cf["fault_id"])
    assert (cleared["at"], cleared["ended_at"], cleared["duration_s"], cleared["severity"]) == \
        (t(6), out["opened_at"], 240, "general")
    cf_orders = [r["work_order_id"] for r in res.of("work_order.created") if cf["fault_id"] in r["fault_ids"]]
    assert cf_orders and sorted(r["work_order_id"] for r in res.of("work_order.resolved", at=t(6))) == \
        sorted(cf_orders)
    res.none("fault.cleared", fault_id=out["fault_id"])


def test_SV_9_serious_complaint_fault_is_not_joined():
    inv = Inv().customer("P", "provincial", hq_city="GZ").circuit("P-INT", "P")
    res = run(inv, [complaint(0, "P"), alarm(40, "P-INT-OTN")], until=t(80))
    cf = res.one("fault.opened", kind="complaint")["fault_id"]
    out = res.one("fault.opened", kind="outage")["fault_id"]
    assert serious_of(res, cf) == (t(30), "SF-6a", "duration")
    res.none("fault.cleared", fault_id=cf)
    assert serious_of(res, out) == (t(70), "SF-3", "duration")


def test_SV_9_complaint_fault_without_circuit_is_not_joined():
    inv = Inv().customer("O").circuit("O-A", "O").circuit("O-B", "O")     # two lines: no circuit named
    res = run(inv, [complaint(0, "O"), alarm(5, "O-A-OTN")], until=t(10))
    cf = res.one("fault.opened", kind="complaint")
    assert cf["circuit_id"] is None
    res.none("fault.cleared")


def test_SV_9_degradation_fault_also_absorbs_the_complaint_fault():
    inv = Inv().customer("O").circuit("O-INT", "O")
    res = run(inv, [complaint(0, "O"), alarm(6, "O-INT-PE", "PACKET_LOSS")], until=t(10))
    cf = res.one("fault.opened", kind="complaint")["fault_id"]
    deg = res.one("fault.opened", kind="degradation")
    cleared = res.one("fault.cleared", fault_id=cf)
    assert (cleared["ended_at"], cleared["duration_s"]) == (deg["opened_at"], 360)


def test_SV_9_absorbed_sf6a_complaint_keeps_its_tm1_on_the_new_fault():
    # A provincial customer complains at 10:00 that all users of its data line are down (SF-6a:
    # serious at 10:30). The data line's outage opens at 10:10 and absorbs the complaint. The
    # complaint joins the new fault, which is general with no running TM-1 (data: no SF row), so by
    # SV-5 it gets SF-6a's TM-1 from the complaint: serious at 10:30.
    inv = Inv().customer("P", "provincial", hq_city="GZ").circuit("P-DATA", "P", "data")
    res = run(inv, [complaint(0, "P", service_type="data"), alarm(10, "P-DATA-OTN")], until=t(60))
    cf = res.one("fault.opened", kind="complaint")["fault_id"]
    out = res.one("fault.opened", kind="outage")["fault_id"]
    assert res.one("fault.cleared", fault_id=cf)["ended_at"] == t(10)
    assert serious_of(res, cf) is None
    assert serious_of(res, out) == (t(30), "SF-6a", "duration")


def test_SV_9_absorbed_sf6a_complaint_does_not_shorten_a_running_tm1():
    inv = Inv().customer("P", "provincial", hq_city="GZ").circuit("P-INT", "P")
    res = run(inv, [complaint(0, "P"), alarm(10, "P-INT-OTN")], until=t(60))
    out = res.one("fault.opened", kind="outage")["fault_id"]
    assert serious_of(res, out) == (t(40), "SF-3", "duration")
    assert len(res.of("fault.serious")) == 1


def test_SV_6_sf6b_title_counts_the_listed_customers():
    res = run(six_b(), THREE + [complaint(5, "O4")], until=t(10))
    sf6b = res.one("fault.opened", customer_id=None)["fault_id"]
    order = res.one("work_order.created", fault_ids=[sf6b])
    assert order["rule"] == "RT-16"
    assert order["title"] == "【集团客户一般故障】广州3家普通集团客户 互联网专线全部用户无法使用"
