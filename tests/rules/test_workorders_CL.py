"""RULES.md §9 for work orders: CL-2 (resolved when the fault ends) and CL-4 (refused actions)."""

import pytest
from scenario import Inv, action, alarm, complaint, run, t


def one_circuit(level="city", grade="standard", *, hq_city=None) -> Inv:
    inv = Inv().customer("C1", level, grade, name="测试客户", hq_city=hq_city)
    inv.circuit("GZ-L-1", "C1", paths=[["GZ-L-1-CPE", "GZ-L-1-OTN", "GZ-L-1-PE"]])
    return inv


def clear(line: dict, at_min: float, event_min: float | None = None) -> dict:
    ev = at_min if event_min is None else event_min
    return {**line, "at": t(at_min), "alarm": {**line["alarm"], "state": "cleared", "event_time": t(ev)}}


# ---------------------------------------------------------------- CL-2

def test_CL_2_every_open_order_is_resolved_when_a_serious_fault_ends():
    line = alarm(0, "GZ-L-1-OTN")
    res = run(one_circuit("provincial", "gold", hq_city="GZ"), [line, clear(line, 45, event_min=40)],
              until=t(60))
    ids = [r["work_order_id"] for r in res.of("work_order.created")]
    assert ids == ["W-000001", "W-000002", "W-000003", "W-000004"]
    assert res.of("work_order.resolved") == [
        {"type": "work_order.resolved", "at": t(45), "work_order_id": i} for i in ids]
    types = res.types()
    assert types.index("fault.cleared") < types.index("work_order.resolved")


def test_CL_2_complaint_fault_orders_resolved_when_operator_resolves():
    res = run(one_circuit(), [complaint(0, "C1", scope="partial"),
                              action(20, "resolve", {"customer_id": "C1", "service_type": "internet"})],
              until=t(30))
    assert res.one("fault.cleared") == {"type": "fault.cleared", "at": t(20), "fault_id": "F-000001",
                                        "severity": "general", "ended_at": t(20), "duration_s": 1200}
    assert [(r["at"], r["work_order_id"]) for r in res.of("work_order.resolved")] == [
        (t(20), "W-000001"), (t(20), "W-000002")]


def test_CL_2_orders_resolved_once_and_a_new_fault_gets_new_orders():
    first = alarm(0, "GZ-L-1-CPE")
    second = alarm(10, "GZ-L-1-CPE")
    res = run(one_circuit(), [first, clear(first, 5), second, clear(second, 12)], until=t(20))
    assert [(r["work_order_id"], r["fault_ids"]) for r in res.of("work_order.created")] == [
        ("W-000001", ["F-000001"]), ("W-000002", ["F-000002"])]
    assert [(r["at"], r["work_order_id"]) for r in res.of("work_order.resolved")] == [
        (t(5), "W-000001"), (t(12), "W-000002")]


def test_CL_2_sv9_absorbed_complaint_fault_orders_are_resolved():
    res = run(one_circuit(), [complaint(0, "C1", scope="partial"), alarm(5, "GZ-L-1-CPE")], until=t(6))
    cleared = res.one("fault.cleared", fault_id="F-000001")
    assert cleared["at"] == t(5)
    assert [r["work_order_id"] for r in res.of("work_order.resolved")] == ["W-000001", "W-000002"]
    assert res.one("work_order.created", fault_ids=["F-000002"])["queue"] == "city.GZ.netservice"


# ---------------------------------------------------------------- CL-4

@pytest.mark.parametrize("queue", ["prov.monitoring", "city.GZ.monitoring", "city.SZ.netservice", "nonsense"])
def test_CL_4_ack_for_a_queue_without_an_order_is_refused(queue):
    res = run(one_circuit(), [alarm(0, "GZ-L-1-CPE"),
                              action(3, "ack", {"fault_id": "F-000001"}, queue=queue)], until=t(4))
    rejected = res.one("input.rejected")
    assert (rejected["at"], rejected["line"]) == (t(3), 2)
    assert queue in rejected["reason"]
    assert [r["type"] for r in res.records] == ["fault.opened", "work_order.created", "input.rejected"]
    assert res.status == 3


def test_CL_4_ack_for_a_resolved_order_is_refused():
    # the SV-9 absorbed complaint fault has ended: selecting it by fault_id is refused
    res = run(one_circuit(), [complaint(0, "C1", scope="partial"), alarm(5, "GZ-L-1-CPE"),
                              action(6, "ack", {"fault_id": "F-000001"}, queue="city.GZ.netservice")],
              until=t(7))
    assert res.one("input.rejected")["line"] == 3
    assert res.status == 3


def test_CL_4_ack_of_a_held_queue_is_accepted_and_emits_nothing():
    res = run(one_circuit(), [alarm(0, "GZ-L-1-CPE"),
                              action(3, "ack", {"fault_id": "F-000001"}, queue="city.GZ.netservice"),
                              action(4, "ack", {"fault_id": "F-000001"}, queue="city.GZ.netservice")],
              until=t(5))
    assert res.status == 0
    assert [r["type"] for r in res.records] == ["fault.opened", "work_order.created"]


@pytest.mark.parametrize("reason", ["ES-4", "ES-7"])
def test_CL_4_escalate_with_a_used_reason_is_refused(reason):
    res = run(one_circuit(), [alarm(0, "GZ-L-1-CPE"),
                              action(2, "escalate", {"fault_id": "F-000001"}, reason=reason),
                              action(4, "escalate", {"circuit_id": "GZ-L-1"}, reason=reason)], until=t(5))
    assert len(res.of("escalation")) == 1
    rejected = res.one("input.rejected")
    assert (rejected["at"], rejected["line"]) == (t(4), 3)
    assert [r["type"] for r in res.records if r["at"] == t(4)] == ["input.rejected"]
    assert res.status == 3


def test_CL_4_ack_or_escalate_on_no_open_fault_is_refused():
    res = run(one_circuit(), [alarm(0, "GZ-L-1-CPE"),
                              action(1, "ack", {"circuit_id": "NOPE"}, queue="city.GZ.netservice"),
                              action(2, "escalate", {"fault_id": "F-000009"}, reason="ES-6")], until=t(3))
    assert [(r["line"], r["at"]) for r in res.of("input.rejected")] == [(2, t(1)), (3, t(2))]
    res.none("escalation")
