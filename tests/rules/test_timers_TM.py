"""RULES.md §7 timers and deadlines: TM-2…TM-10."""

import io
from datetime import datetime

import orjson
import pytest
from scenario import BASE, RULEBOOK, Inv, action, alarm, complaint, run, t

from services.commands.replay import Replay
from services.drivers.pipeline import Pipeline
from shared.clock import SHANGHAI, fmt_time, parse_time
from shared.timers import LIVE_CATCH_UP_S


def at_local(stamp: str) -> float:
    """Minutes from the scenario base to a local (Asia/Shanghai) time 'YYYY-MM-DD HH:MM'."""
    when = datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    return (when - BASE).total_seconds() / 60


def one_circuit(level="city", grade="standard", *, hq_city=None, service_type="internet", span="local",
                z_city=None) -> Inv:
    inv = Inv().customer("C1", level, grade, name="测试客户", hq_city=hq_city)
    inv.circuit("GZ-L-1", "C1", service_type, span=span, z_city=z_city,
                paths=[["GZ-L-1-CPE", "GZ-L-1-OTN", "GZ-L-1-PE"]])
    return inv


def clear(line: dict, at_min: float, event_min: float | None = None) -> dict:
    ev = at_min if event_min is None else event_min
    return {**line, "at": t(at_min), "alarm": {**line["alarm"], "state": "cleared", "event_time": t(ev)}}


def onsite(res) -> list[tuple[str, str, str, str]]:
    return [(r["at"], r["queue"], r["deadline"], r["rule"]) for r in res.of("onsite.required")]


PROV = dict(level="provincial", grade="gold", hq_city="GZ")


# ---------------------------------------------------------------- TM-2

@pytest.mark.parametrize(("inv_kw", "line", "queue"), [
    pytest.param({}, alarm(0, "GZ-L-1-CPE"), "city.GZ.netservice", id="customer-side-city-level"),
    pytest.param({}, complaint(0, "C1", scope="partial"), "city.GZ.netservice", id="unknown-complaint"),
    pytest.param(PROV, complaint(0, "C1", scope="partial"), "prov.netservice", id="provincial-at-hq"),
    pytest.param(dict(level="provincial", grade="gold", hq_city="SZ"), alarm(0, "GZ-L-1-CPE"),
                 "city.GZ.netservice", id="provincial-branch"),
])
def test_TM_2_customer_or_unknown_fault_open_15_min_sends_netservice_on_site(inv_kw, line, queue):
    res = run(one_circuit(**{"service_type": "data", **inv_kw}), [line], until=t(20))
    assert onsite(res) == [(t(15), queue, t(15), "TM-2")]
    assert res.one("onsite.required")["fault_id"] == "F-000001"


def test_TM_2_not_for_core_side_fault():
    res = run(one_circuit(service_type="data"), [alarm(0, "GZ-L-1-OTN")], until=t(60))
    res.none("onsite.required")


def test_TM_2_not_when_the_fault_ended_before_15_min():
    line = alarm(0, "GZ-L-1-CPE")
    res = run(one_circuit(service_type="data"), [line, clear(line, 14)], until=t(60))
    res.none("onsite.required")


def test_TM_2_counts_from_opened_at_and_fires_at_once_when_overdue():
    line = alarm(20, "GZ-L-1-CPE", event_min=0)
    res = run(one_circuit(service_type="data"), [line], until=t(21))
    assert onsite(res) == [(t(20), "city.GZ.netservice", t(20), "TM-2")]


def test_TM_2_then_serious_TM_3_adds_nothing():
    res = run(one_circuit(**PROV), [alarm(0, "GZ-L-1-CPE")], until=t(60))
    assert res.one("fault.serious")["at"] == t(30)
    assert onsite(res) == [(t(15), "prov.netservice", t(15), "TM-2")]


# ---------------------------------------------------------------- TM-3

@pytest.mark.parametrize(("inv_kw", "queue"), [
    pytest.param(PROV, "prov.netservice", id="provincial-at-hq"),
    pytest.param(dict(level="city", grade="diamond"), "city.GZ.netservice", id="city-level-diamond"),
])
def test_TM_3_serious_fault_sends_netservice_on_site_within_15_min(inv_kw, queue):
    res = run(one_circuit(**inv_kw), [alarm(0, "GZ-L-1-OTN")], until=t(60))
    assert onsite(res) == [(t(30), queue, t(45), "TM-3")]


def test_TM_3_first_then_TM_2_adds_nothing():
    res = run(one_circuit(**PROV), [alarm(0, "GZ-L-1-CPE"),
                                    action(5, "confirm", {"circuit_id": "GZ-L-1"}, impact="full_block")],
              until=t(60))
    assert res.one("fault.serious") == {"type": "fault.serious", "at": t(5), "fault_id": "F-000001",
                                        "rule": "SF-3", "trigger": "confirmed"}
    assert onsite(res) == [(t(5), "prov.netservice", t(20), "TM-3")]


# ---------------------------------------------------------------- TM-4

@pytest.mark.parametrize(("serious_at", "minutes"), [
    pytest.param("2026-11-25 10:30", 10, id="wednesday-morning"),
    pytest.param("2026-11-27 16:50", 10, id="friday-16-50"),
    pytest.param("2026-11-27 17:10", 30, id="friday-after-17"),
    pytest.param("2026-11-26 17:20", 10, id="thursday-17-20"),
    pytest.param("2026-11-25 07:50", 30, id="before-08-30"),
    pytest.param("2026-11-28 10:30", 30, id="saturday"),
    pytest.param("2026-10-01 10:30", 30, id="national-day-holiday"),
    pytest.param("2026-10-10 10:30", 10, id="adjusted-working-saturday"),
])
def test_TM_4_prov_netservice_arrive_by_office_hours_vs_outside(serious_at, minutes):
    s = at_local(serious_at)
    res = run(one_circuit(**PROV), [alarm(s - 30, "GZ-L-1-OTN")], until=t(s + 1))
    assert res.one("fault.serious")["at"] == t(s)
    order = res.one("work_order.created", queue="prov.netservice")
    assert (order["at"], order["rule"], order["priority"], order["arrive_by"]) == (
        t(s), "TM-4", "urgent", t(s + minutes))


def test_TM_4_friday_after_17_is_outside_office_hours():
    s = at_local("2026-11-27 17:10")
    res = run(one_circuit(**PROV), [alarm(s - 30, "GZ-L-1-OTN")], until=t(s + 1))
    assert res.one("work_order.created", queue="prov.netservice")["arrive_by"] == "2026-11-27T17:40:00+08:00"


def test_TM_4_statutory_holiday_2026_10_01_gives_30_minutes():
    s = at_local("2026-10-01 10:30")
    res = run(one_circuit(**PROV), [alarm(s - 30, "GZ-L-1-OTN")], until=t(s + 1))
    assert res.one("work_order.created", queue="prov.netservice")["arrive_by"] == "2026-10-01T11:00:00+08:00"


def test_TM_4_judged_at_the_serious_time_of_a_confirmation():
    s = at_local("2026-11-27 16:55")        # opened in office hours, confirmed just before 17:00
    res = run(one_circuit(**PROV), [alarm(s - 5, "GZ-L-1-OTN"),
                                    action(s, "confirm", {"circuit_id": "GZ-L-1"}, impact="full_block")],
              until=t(s + 60))
    assert res.one("work_order.created", queue="prov.netservice")["arrive_by"] == "2026-11-27T17:05:00+08:00"


def test_TM_4_not_for_city_level_customers():
    res = run(one_circuit("city", "diamond"), [alarm(0, "GZ-L-1-OTN")], until=t(31))
    res.none("work_order.created", queue="prov.netservice")
    assert all("arrive_by" not in r for r in res.of("work_order.created") + res.of("work_order.upgraded"))


# ---------------------------------------------------------------- TM-5

def test_TM_5_city_monitoring_order_of_provincial_customer_carries_contact_by():
    line = alarm(5, "GZ-L-1-CPE", event_min=0)          # arrives 5 min late: contact_by counts from opened_at
    res = run(one_circuit(**PROV), [line], until=t(6))
    order = res.one("work_order.created", queue="city.GZ.monitoring")
    assert (order["at"], order["rule"], order["contact_by"]) == (t(5), "RT-3", t(30))


def test_TM_5_diamond_provincial_customer_rt5_city_monitoring_carries_contact_by():
    res = run(one_circuit("provincial", "diamond", hq_city="GZ"), [alarm(2, "GZ-L-1-OTN")], until=t(3))
    order = res.one("work_order.created", queue="city.GZ.monitoring")
    assert (order["rule"], order["contact_by"]) == ("RT-5", t(32))
    assert "contact_by" not in res.one("work_order.created", queue="prov.specialist.transmission")


def test_TM_5_provincial_complaint_fault_contact_by():
    res = run(one_circuit(**PROV), [complaint(7, "C1", scope="partial")], until=t(8))
    assert res.one("work_order.created", queue="city.GZ.monitoring")["contact_by"] == t(37)


@pytest.mark.parametrize(("inv_kw", "root", "queue"), [
    pytest.param(dict(level="provincial", grade="gold", hq_city="GZ", span="cross_city", z_city="SZ"),
                 "GZ-L-1-CPE", "city.SZ.monitoring", id="RT-10-peer-city"),
    pytest.param(dict(level="city", grade="diamond"), "GZ-L-1-OTN", "city.GZ.monitoring",
                 id="city-level-customer"),
    pytest.param(PROV, "GZ-L-1-OTN", "city.GZ.monitoring", id="created-when-serious"),
])
def test_TM_5_no_contact_by_on_other_monitoring_orders(inv_kw, root, queue):
    res = run(one_circuit(**inv_kw), [alarm(0, root)], until=t(31))
    order = res.one("work_order.created", queue=queue)
    assert "contact_by" not in order


# ---------------------------------------------------------------- TM-6

def test_TM_6_stage_sms_every_2_hours_while_serious_fault_open():
    line = alarm(0, "GZ-L-1-OTN")
    res = run(one_circuit(**PROV), [line, clear(line, 300)], until=t(600))
    assert [(r["at"], r["stage"]) for r in res.of("sms")] == [
        (t(30), "new"), (t(150), "update"), (t(270), "update"), (t(300), "recovered")]
    assert res.of("sms", stage="update")[0]["text"] == (
        "【进展|影响业务|严重故障|测试客户互联网专线中断】2026/11/25 12:30，"
        "专线GZ-L-1，故障点GZ-L-1-OTN，已历时2小时30分钟")


def test_TM_6_counts_from_the_serious_time_not_opened_at():
    line = alarm(0, "GZ-L-1-OTN")
    confirm = action(12, "confirm", {"circuit_id": "GZ-L-1"}, impact="full_block")
    res = run(one_circuit(**PROV), [line, confirm], until=t(12 + 125))
    assert [(r["at"], r["stage"]) for r in res.of("sms")] == [(t(12), "new"), (t(132), "update")]


# ---------------------------------------------------------------- TM-7

def test_TM_7_report_due_48h_after_the_end_event_time():
    line = alarm(0, "GZ-L-1-OTN")
    res = run(one_circuit(**PROV), [line, clear(line, 65, event_min=60)], until=t(70))
    assert res.one("report.due") == {"type": "report.due", "at": t(65), "fault_id": "F-000001",
                                     "due": "2026-11-27T11:00:00+08:00"}
    types = res.types()
    assert types.index("fault.cleared") < types.index("report.due")


def test_TM_7_no_report_for_a_general_fault():
    line = alarm(0, "GZ-L-1-OTN")
    res = run(one_circuit(**PROV), [line, clear(line, 20)], until=t(70))
    res.none("report.due")


# ---------------------------------------------------------------- TM-8

def test_TM_8_counts_8_hours_from_opened_at():
    inv = one_circuit("city", "gold", service_type="data", span="cross_city", z_city="SZ")
    res = run(inv, [alarm(10, "GZ-L-1-OTN", event_min=0)], until=t(490))
    assert [(r["at"], r["reason"]) for r in res.of("escalation")] == [(t(480), "ES-2")]


def test_TM_8_not_when_the_interruption_ends_first():
    inv = one_circuit("city", "gold", service_type="data", span="cross_city", z_city="SZ")
    line = alarm(0, "GZ-L-1-OTN")
    res = run(inv, [line, clear(line, 470)], until=t(600))
    res.none("escalation")


# ---------------------------------------------------------------- TM-9

def test_TM_9_unknown_cause_fault_not_acked_in_15_min_misses_deadline():
    res = run(one_circuit(), [complaint(3, "C1", scope="partial")], until=t(30))
    assert res.one("deadline.missed") == {"type": "deadline.missed", "at": t(18), "fault_id": "F-000001",
                                          "rule": "TM-9", "deadline": t(18)}


@pytest.mark.parametrize("queue", ["city.GZ.netservice", "city.GZ.specialist.transmission"])
def test_TM_9_ack_before_15_min_prevents_it(queue):
    res = run(one_circuit(), [complaint(3, "C1", scope="partial"),
                              action(10, "ack", {"fault_id": "F-000001"}, queue=queue)], until=t(30))
    res.none("deadline.missed")
    assert res.status == 0
    assert [r["type"] for r in res.records if r["at"] == t(10)] == []


def test_TM_9_refused_ack_does_not_prevent_it():
    ack = action(10, "ack", {"fault_id": "F-000001"}, queue="prov.monitoring")
    res = run(one_circuit(), [complaint(3, "C1", scope="partial"), ack], until=t(30))
    assert res.one("input.rejected")["line"] == 2
    assert res.one("deadline.missed")["at"] == t(18)


def test_TM_9_ack_after_15_min_is_too_late():
    res = run(one_circuit(), [complaint(3, "C1", scope="partial"),
                              action(18, "ack", {"fault_id": "F-000001"}, queue="city.GZ.netservice")],
              until=t(30))
    assert res.one("deadline.missed")["at"] == t(18)


@pytest.mark.parametrize("root", ["GZ-L-1-OTN", "GZ-L-1-CPE"])
def test_TM_9_not_for_faults_with_a_known_cause(root):
    res = run(one_circuit(service_type="data"), [alarm(0, root)], until=t(60))
    res.none("deadline.missed")


def test_TM_9_not_when_the_complaint_fault_was_resolved():
    res = run(one_circuit(), [complaint(0, "C1", scope="partial"),
                              action(10, "resolve", {"fault_id": "F-000001"})], until=t(60))
    res.none("deadline.missed")


# ---------------------------------------------------------------- TM-10

def test_TM_10_no_confirm_by_contact_by_misses_deadline():
    res = run(one_circuit(service_type="data", **PROV), [alarm(0, "GZ-L-1-CPE")], until=t(60))
    assert res.one("deadline.missed") == {"type": "deadline.missed", "at": t(30), "fault_id": "F-000001",
                                          "rule": "TM-10", "deadline": t(30)}


@pytest.mark.parametrize("impact", ["no_impact", "full_block"])
def test_TM_10_any_accepted_confirm_prevents_it(impact):
    res = run(one_circuit(service_type="data", **PROV),
              [alarm(0, "GZ-L-1-CPE"), action(20, "confirm", {"circuit_id": "GZ-L-1"}, impact=impact)],
              until=t(60))
    res.none("deadline.missed")
    res.none("fault.serious")


def test_TM_10_not_when_the_fault_became_serious_at_the_same_instant():
    # SF-3's TM-1 and TM-10 are both due at 30: TM-1 fires first (T-7), the fault is serious.
    res = run(one_circuit(**PROV), [alarm(0, "GZ-L-1-CPE")], until=t(60))
    assert res.one("fault.serious")["at"] == t(30)
    res.none("deadline.missed")


def test_TM_10_not_when_the_fault_ended():
    line = alarm(0, "GZ-L-1-CPE")
    res = run(one_circuit(service_type="data", **PROV), [line, clear(line, 29)], until=t(60))
    res.none("deadline.missed")


def test_TM_10_overdue_contact_by_fires_at_arrival():
    res = run(one_circuit(service_type="data", **PROV), [alarm(40, "GZ-L-1-CPE", event_min=0)], until=t(41))
    missed = res.one("deadline.missed", rule="TM-10")
    assert (missed["at"], missed["deadline"]) == (t(40), t(30))


def test_TM_6_NT_2_a_clock_jump_of_years_sends_one_stage_sms_not_one_per_missed_slot():
    """The live service's clock can jump (a downtime, a wall clock set forward by years):
    the first missed stage SMS goes out (at its due time, T-2) and the next is due on the
    first 2-hour slot after the jump, not one per missed slot. Replay walks every slot
    (test_T_window_a_long_until_inside_the_window_streams_its_records)."""
    pipe = Pipeline(one_circuit(**PROV).build(), RULEBOOK, catch_up_s=LIVE_CATCH_UP_S)
    out = io.BytesIO()
    replay = Replay(pipe, out)
    replay.run(io.BytesIO(orjson.dumps(alarm(0, "GZ-L-1-OTN")) + b"\n"), parse_time(t(31)))
    serious_at = parse_time(t(30))
    assert [r["stage"] for r in records_of(out) if r["type"] == "sms"] == ["new"]

    period = 2 * 3600
    jump = serious_at + 3 * 365 * 86400 + 37 * 60            # three years and 37 minutes on
    made = pipe.advance(jump)                                # the live clock, read after the jump
    sms = [r for r in made if r["type"] == "sms"]
    assert [(r["stage"], r["at"]) for r in sms] == [("update", fmt_time(serious_at + period))]
    next_slot = serious_at + (int((jump - serious_at) // period) + 1) * period
    assert pipe.dispatcher.timers.next_due() == next_slot
    assert [r for r in pipe.advance(next_slot - 1) if r["type"] == "sms"] == []
    later = [r for r in pipe.advance(next_slot) if r["type"] == "sms"]
    assert [(r["stage"], r["at"]) for r in later] == [("update", fmt_time(next_slot))]


def records_of(out) -> list[dict]:
    return [orjson.loads(x) for x in out.getvalue().splitlines()]


def test_T_2_T_3_back_from_a_downtime_the_live_service_fires_each_missed_timer_once_at_its_due_time():
    """Five hours down after a fault opened: TM-1 fires at its due time (T-2), as in
    replay; only the repeating TM-6 does not walk the missed slots."""
    def back_after_five_hours(catch_up_s):
        pipe = Pipeline(one_circuit(**PROV).build(), RULEBOOK, catch_up_s=catch_up_s)
        Replay(pipe, io.BytesIO()).run(io.BytesIO(orjson.dumps(alarm(0, "GZ-L-1-OTN")) + b"\n"), None)
        return pipe.advance(parse_time(t(300)))

    live, replayed = back_after_five_hours(LIVE_CATCH_UP_S), back_after_five_hours(None)
    assert [r for r in live if r["type"] != "sms"] == [r for r in replayed if r["type"] != "sms"]
    assert next(r for r in live if r["type"] == "fault.serious")["at"] == t(30)
    assert [(r["stage"], r["at"]) for r in live if r["type"] == "sms"] == [("new", t(30)), ("update", t(150))]
    assert [(r["stage"], r["at"]) for r in replayed if r["type"] == "sms"] == \
        [("new", t(30)), ("update", t(150)), ("update", t(270))]


def test_TM_6_a_slot_late_by_less_than_the_catch_up_is_not_skipped():
    pipe = Pipeline(one_circuit(**PROV).build(), RULEBOOK, catch_up_s=LIVE_CATCH_UP_S)
    Replay(pipe, io.BytesIO()).run(io.BytesIO(orjson.dumps(alarm(0, "GZ-L-1-OTN")) + b"\n"), None)
    made = pipe.advance(parse_time(t(270)) + 20)                 # the loop woke 20 s late
    assert [r["at"] for r in made if r["type"] == "sms"] == [t(30), t(150), t(270)]


def test_TM_6_a_city_dispatcher_on_the_wall_clock_does_not_walk_a_clock_jump_either():
    """The Kafka pipeline's dispatcher shard (wall clock) skips the missed slots as the
    embedded engine does; the split pipeline of the equivalence tests (stream time) walks."""
    from services.drivers.split import SplitPipeline

    split = SplitPipeline(one_circuit(**PROV).build(), RULEBOOK)
    Replay(split, io.BytesIO()).run(io.BytesIO(orjson.dumps(alarm(0, "GZ-L-1-OTN")) + b"\n"),
                                     parse_time(t(31)))
    for shard in split.dispatchers.values():
        shard.catch_up_s = LIVE_CATCH_UP_S
    jump = parse_time(t(30)) + 3 * 365 * 86400 + 37 * 60
    sms = [r for r in split.advance(jump) if r["type"] == "sms"]
    assert [(r["stage"], r["at"]) for r in sms] == [("update", t(150))]
