"""RULES.md §9 Closing and operator actions: CL-1, CL-3 (as visible in records), CL-4."""

import pytest
from scenario import Inv, action, alarm, complaint, raise_clear, run, t


def provincial() -> Inv:
    inv = Inv().customer("P", "provincial", "gold", name="某省级集团", hq_city="GZ")
    return inv.circuit("P-INT", "P").circuit("P-INT2", "P")


def records_without(res, type_: str) -> list[dict]:
    return [r for r in res.records if r["type"] != type_]


# ---------------------------------------------------------------------- CL-1


def test_CL_1_outage_fault_ends_when_the_circuit_is_up_again():
    res = run(provincial(), raise_clear("P-INT-OTN", 0, 12))
    cleared = res.one("fault.cleared")
    assert (cleared["at"], cleared["ended_at"], cleared["duration_s"], cleared["severity"]) == \
        (t(12), t(12), 720, "general")
    orders = res.of("work_order.created")
    assert sorted(r["work_order_id"] for r in res.of("work_order.resolved", at=t(12))) == \
        sorted(r["work_order_id"] for r in orders)


def test_CL_1_degradation_fault_ends_when_the_circuit_is_clean():
    res = run(provincial(), raise_clear("P-INT-PE", 0, 7, "HIGH_BER"))
    assert res.one("fault.cleared")["ended_at"] == t(7)


def test_CL_1_complaint_fault_ends_only_when_resolved():
    inv = Inv().customer("O")
    never = run(inv, [complaint(0, "O")], until=t(24 * 60))
    never.none("fault.cleared")
    res = run(inv, [complaint(0, "O"),
                    action(50, "resolve", {"customer_id": "O", "service_type": "internet"})])
    cleared = res.one("fault.cleared")
    assert (cleared["at"], cleared["ended_at"], cleared["duration_s"]) == (t(50), t(50), 3000)


def test_CL_1_complaint_that_joined_a_fault_ends_with_it():
    inv = Inv().customer("O").circuit("O-INT", "O")
    res = run(inv, [alarm(0, "O-INT-OTN", alarm_id="k"), complaint(5, "O"),
                    alarm(20, "O-INT-OTN", state="cleared", alarm_id="k"),
                    action(25, "resolve", {"customer_id": "O", "service_type": "internet"})])
    assert len(res.of("fault.opened")) == 1
    assert res.one("fault.cleared")["ended_at"] == t(20)
    rej = res.one("input.rejected")                   # nothing of the complaint is left open
    assert rej["line"] == 4 and "matches no open fault" in rej["reason"]


# ---------------------------------------------------------------------- CL-3


def test_CL_3_fault_records_keep_times_rule_trigger_end_duration_and_attribution():
    res = run(provincial(), [
        alarm(1, "P-INT-OTN", "FIBER_CUT", event_min=0, alarm_id="cut"),
        action(45, "attribution", {"circuit_id": "P-INT"}, attribution="not_ours"),
        alarm(95, "P-INT-OTN", "FIBER_CUT", "cleared", event_min=90, alarm_id="cut"),
    ])
    opened = res.one("fault.opened")
    fid = opened["fault_id"]
    assert opened == {
        "type": "fault.opened", "at": t(1), "fault_id": fid, "incident_id": opened["incident_id"],
        "kind": "outage", "circuit_id": "P-INT", "customer_id": "P", "city": "GZ", "service_type": "internet",
        "important": True, "cause_side": "core", "root_resource": "P-INT-OTN", "layer": "transmission",
        "probable_cause": "FIBER_CUT", "opened_at": t(0)}
    assert res.one("fault.serious") == {"type": "fault.serious", "at": t(30), "fault_id": fid,
                                        "rule": "SF-3", "trigger": "duration"}
    assert res.one("fault.attributed") == {"type": "fault.attributed", "at": t(45), "fault_id": fid,
                                           "attribution": "not_ours"}
    assert res.one("fault.cleared") == {"type": "fault.cleared", "at": t(95), "fault_id": fid,
                                        "severity": "serious", "ended_at": t(90), "duration_s": 5400}
    # every work order, notification and the report deadline name the fault
    assert all(fid in r["fault_ids"] for r in res.of("work_order.created"))
    assert [r["stage"] for r in res.of("sms", fault_id=fid)] == ["new", "recovered"]
    assert res.one("report.due", fault_id=fid)["due"] == "2026-11-27T11:30:00+08:00"


# ---------------------------------------------------------------------- CL-4


def assert_rejected(res, line: int, at: str, *words: str) -> str:
    rej = res.one("input.rejected")
    assert (rej["line"], rej["at"]) == (line, at)
    for w in words:
        assert w in rej["reason"], rej["reason"]
    assert res.status == 3
    return rej["reason"]


@pytest.mark.parametrize(("kind", "fields"), [
    pytest.param("confirm", {"impact": "full_block"}, id="confirm"),
    pytest.param("resolve", {}, id="resolve"),
    pytest.param("attribution", {"attribution": "not_ours"}, id="attribution"),
])
@pytest.mark.parametrize(("select", "words"), [
    pytest.param({"circuit_id": "P-INT"}, ["circuit_id=P-INT", "matches no open fault"], id="circuit-up"),
    pytest.param({"circuit_id": "NOPE"}, ["matches no open fault"], id="unknown-circuit"),
    pytest.param({"customer_id": "P", "service_type": "voice"}, ["matches no open fault"],
                 id="no-voice-fault"),
    pytest.param({"city": "GZ", "service_type": "internet"}, ["matches no open fault"], id="no-sf6b-fault"),
    pytest.param({"fault_id": "F-000099"}, ["F-000099", "is unknown"], id="unknown-fault-id"),
    pytest.param({"fault_id": "F-000001"}, ["F-000001", "has ended"], id="ended-fault-id"),
])
def test_CL_4_select_matching_no_open_fault_is_refused(kind, fields, select, words):
    base = raise_clear("P-INT-OTN", 0, 5)
    plain = run(provincial(), base, until=t(60))
    res = run(provincial(), base + [action(10, kind, select, **fields)], until=t(60))
    assert_rejected(res, 3, t(10), *words)
    assert records_without(res, "input.rejected") == plain.records       # state unchanged


@pytest.mark.parametrize(("kind", "fields"), [
    pytest.param("confirm", {"impact": "full_block"}, id="confirm"),
    pytest.param("resolve", {}, id="resolve"),
])
def test_CL_4_select_matching_several_open_faults_is_refused(kind, fields):
    base = [alarm(0, "P-INT-OTN"), alarm(1, "P-INT2-OTN")]
    plain = run(provincial(), base, until=t(60))
    sel = {"customer_id": "P", "service_type": "internet"}
    res = run(provincial(), base + [action(10, kind, sel, **fields)], until=t(60))
    assert_rejected(res, 3, t(10), "matches 2 open faults", "F-000001", "F-000002")
    assert records_without(res, "input.rejected") == plain.records
    # neither fault was made serious at 10:10: both wait for TM-1 at 10:30 / 10:31
    assert [(r["fault_id"], r["at"], r["trigger"]) for r in res.of("fault.serious")] == \
        [("F-000001", t(30), "duration"), ("F-000002", t(31), "duration")]


def test_CL_4_select_narrowed_by_city_picks_one():
    inv = Inv().customer("P", "provincial", hq_city="GZ")
    inv.circuit("P-GZ", "P").circuit("P-SZ", "P", a_city="SZ")
    res = run(inv, [alarm(0, "P-GZ-OTN"), alarm(1, "P-SZ-OTN"),
                    action(10, "confirm", {"customer_id": "P", "service_type": "internet", "city": "SZ"},
                           impact="full_block")], until=t(20))
    res.none("input.rejected")
    sz = res.one("fault.opened", circuit_id="P-SZ")["fault_id"]
    assert [(r["fault_id"], r["at"], r["trigger"]) for r in res.of("fault.serious")] == \
        [(sz, t(10), "confirmed")]


@pytest.mark.parametrize(("events", "select", "words"), [
    pytest.param([alarm(0, "P-INT-OTN", alarm_id="k")], {"circuit_id": "P-INT"},
                 ["P-INT", "still interrupted"], id="outage-by-circuit"),
    pytest.param([alarm(0, "P-INT-OTN", alarm_id="k")], {"fault_id": "F-000001"},
                 ["F-000001", "still interrupted"], id="outage-by-fault-id"),
    pytest.param([alarm(0, "P-INT-OTN", "PACKET_LOSS", alarm_id="k")], {"circuit_id": "P-INT"},
                 ["P-INT", "still degraded"], id="degradation"),
])
def test_CL_4_resolve_of_a_circuit_fault_whose_circuit_is_still_down_is_refused(events, select, words):
    cause = events[0]["alarm"]["probable_cause"]
    tail = [alarm(50, "P-INT-OTN", cause, "cleared", alarm_id="k")]
    plain = run(provincial(), events + tail, until=t(60))
    res = run(provincial(), events + [action(10, "resolve", select)] + tail, until=t(60))
    assert_rejected(res, 2, t(10), *words)
    assert records_without(res, "input.rejected") == plain.records       # the fault lives on
    fid = res.one("fault.opened")["fault_id"]
    assert res.one("fault.cleared", fault_id=fid)["ended_at"] == t(50)


def test_CL_4_refused_line_does_not_stop_the_rest():
    res = run(provincial(), [alarm(0, "P-INT-OTN"), action(10, "resolve", {"circuit_id": "P-INT"}),
                             action(12, "confirm", {"circuit_id": "P-INT"}, impact="full_block")],
              until=t(20))
    assert [r["line"] for r in res.of("input.rejected")] == [2]
    serious = res.one("fault.serious")
    assert (serious["at"], serious["trigger"]) == (t(12), "confirmed")


def test_CL_4_ack_for_a_queue_without_an_open_order_is_refused():
    res = run(provincial(), [alarm(0, "P-INT-OTN"),
                             action(5, "ack", {"circuit_id": "P-INT"}, queue="city.SZ.monitoring"),
                             action(6, "ack", {"circuit_id": "P-INT"}, queue="prov.specialist.transmission")],
              until=t(20))
    assert_rejected(res, 2, t(5), "city.SZ.monitoring")


def test_CL_4_escalate_with_a_reason_already_used_is_refused():
    res = run(provincial(), [alarm(0, "P-INT-OTN"),
                             action(5, "escalate", {"circuit_id": "P-INT"}, reason="ES-6"),
                             action(6, "escalate", {"circuit_id": "P-INT"}, reason="ES-6"),
                             action(7, "escalate", {"circuit_id": "P-INT"}, reason="ES-7")], until=t(20))
    assert_rejected(res, 3, t(6), "ES-6")
    assert [(r["reason"], r["at"]) for r in res.of("escalation")] == [("ES-6", t(5)), ("ES-7", t(7))]
