"""RULES.md §0 Time: T-1 … T-7, driven through the replay on a simulated clock."""

import pytest
from scenario import RULEBOOK, Inv, alarm, complaint, raise_clear, run, t


def sec(seconds: float) -> str:
    """An ISO time `seconds` after the scenario's base."""
    return t(seconds / 60)


def provincial_internet() -> Inv:
    """A provincial-level customer with one internet line [CPE, OTN, PE] in GZ (SF-3 applies)."""
    return Inv().customer("P", "provincial", "gold", hq_city="GZ").circuit("P-INT", "P")


def index(res, type_, **match) -> int:
    for i, r in enumerate(res.records):
        if r["type"] == type_ and all(r.get(k) == v for k, v in match.items()):
            return i
    raise AssertionError(f"no {type_} {match}")


# ---------------------------------------------------------------------- T-1


def test_T_1_alarm_event_time_is_opened_at_and_arrival_is_record_at():
    res = run(provincial_internet(), [alarm(3, "P-INT-OTN", event_min=1)])
    opened = res.one("fault.opened")
    assert opened["opened_at"] == t(1)      # event time: when it happened in the network
    assert opened["at"] == t(3)             # the clock: when the service handled it


def test_T_1_complaint_event_time_is_its_arrival():
    inv = Inv().customer("O").circuit("O-INT", "O")
    res = run(inv, [complaint(7, "O")])
    opened = res.one("fault.opened", kind="complaint")
    assert opened["opened_at"] == t(7) and opened["at"] == t(7)


# ---------------------------------------------------------------------- T-2


def test_T_2_fault_times_and_timer_due_come_from_event_times():
    res = run(provincial_internet(), [
        alarm(5, "P-INT-OTN", event_min=0, alarm_id="T2"),
        alarm(50, "P-INT-OTN", "LOS", "cleared", event_min=45, alarm_id="T2"),
    ])
    fid = res.one("fault.opened")["fault_id"]
    serious = res.one("fault.serious", fault_id=fid)
    assert serious["at"] == t(30)           # opened_at (10:00) + 30 min, not arrival + 30 min
    cleared = res.one("fault.cleared", fault_id=fid)
    assert cleared["at"] == t(50)           # record at: the clear's arrival
    assert cleared["ended_at"] == t(45)     # fault time: the clear's event time
    assert cleared["duration_s"] == 45 * 60


# ---------------------------------------------------------------------- T-3


def test_T_3_timer_due_at_t_fires_before_an_input_arriving_at_t():
    res = run(provincial_internet(), raise_clear("P-INT-OTN", 0, 30))
    fid = res.one("fault.opened")["fault_id"]
    assert res.one("fault.serious", fault_id=fid)["at"] == t(30)
    assert index(res, "fault.serious", fault_id=fid) < index(res, "fault.cleared", fault_id=fid)
    cleared = res.one("fault.cleared", fault_id=fid)
    assert cleared["severity"] == "serious" and cleared["duration_s"] == 1800


@pytest.mark.parametrize(("until", "serious_at"), [
    pytest.param(t(30), t(30), id="run-ends-at-due"),
    pytest.param(t(45), t(30), id="run-ends-after-due"),
    pytest.param(sec(30 * 60 - 1), None, id="run-ends-one-second-before-due"),
])
def test_T_3_timer_fires_when_the_run_ends_at_or_after_its_due_time(until, serious_at):
    res = run(provincial_internet(), [alarm(0, "P-INT-OTN")], until=until)
    found = res.of("fault.serious")
    assert [r["at"] for r in found] == ([serious_at] if serious_at else [])


def test_T_3_overdue_timer_fires_at_once_at_the_arrival_of_its_cause():
    res = run(provincial_internet(), [alarm(40, "P-INT-OTN", event_min=0)])
    opened = res.one("fault.opened")
    assert opened["opened_at"] == t(0) and opened["at"] == t(40)
    serious = res.one("fault.serious", fault_id=opened["fault_id"])
    assert serious["at"] == t(40)
    assert (serious["rule"], serious["trigger"]) == ("SF-3", "duration")
    assert index(res, "fault.opened") < index(res, "fault.serious")


# ---------------------------------------------------------------------- T-4


def test_T_4_late_clear_only_sets_the_true_end_and_duration():
    res = run(provincial_internet(), [
        alarm(0, "P-INT-OTN", alarm_id="T4"),
        alarm(45, "P-INT-OTN", state="cleared", event_min=20, alarm_id="T4"),
    ], until=t(60))
    fid = res.one("fault.opened")["fault_id"]
    serious = res.one("fault.serious", fault_id=fid)            # the decision stands
    assert serious["at"] == t(30) and serious["trigger"] == "duration"
    cleared = res.one("fault.cleared", fault_id=fid)
    assert cleared["at"] == t(45)
    assert cleared["ended_at"] == t(20) and cleared["duration_s"] == 20 * 60
    assert cleared["severity"] == "serious"
    assert res.one("report.due", fault_id=fid)["due"] == "2026-11-27T10:20:00+08:00"  # TM-7 from the end


@pytest.mark.parametrize(("clear_at", "clear_event", "serious"), [
    pytest.param(sec(1799), sec(1799), False, id="ends-at-29m59s-in-time"),
    pytest.param(sec(1800), sec(1800), True, id="reaching-30m-counts"),
    pytest.param(sec(1800), sec(1799), True, id="clear-of-29m59s-arriving-at-due-is-late"),
])
def test_T_4_reaching_the_threshold_counts_and_late_clears_do_not_undo(clear_at, clear_event, serious):
    clear = alarm(0, "P-INT-OTN", state="cleared", alarm_id="T4b")
    clear["at"], clear["alarm"]["event_time"] = clear_at, clear_event
    res = run(provincial_internet(), [alarm(0, "P-INT-OTN", alarm_id="T4b"), clear], until=t(60))
    fid = res.one("fault.opened")["fault_id"]
    assert len(res.of("fault.serious", fault_id=fid)) == (1 if serious else 0)
    cleared = res.one("fault.cleared", fault_id=fid)
    assert cleared["ended_at"] == clear_event
    assert cleared["severity"] == ("serious" if serious else "general")


# ---------------------------------------------------------------------- T-5


def test_T_5_line_earlier_than_the_clock_is_rejected_and_the_rest_processed():
    res = run(provincial_internet(), [
        alarm(5, "P-INT-CPE", "TEMPERATURE"),          # line 1 sets the clock to 10:05
        alarm(3, "P-INT-OTN"),                         # line 2 goes back in time
        alarm(6, "P-INT-PE", event_min=6),             # line 3 is still processed
    ])
    assert res.status == 3
    rej = res.one("input.rejected")
    assert rej["line"] == 2 and rej["at"] == t(5)
    assert "earlier than the clock" in rej["reason"]
    opened = res.one("fault.opened")
    assert opened["root_resource"] == "P-INT-PE" and opened["opened_at"] == t(6)


def test_T_5_equal_arrival_times_are_in_order():
    res = run(provincial_internet(), [alarm(5, "P-INT-CPE", "TEMPERATURE"), alarm(5, "P-INT-OTN")])
    assert res.status == 0
    res.none("input.rejected")
    assert res.one("fault.opened")["at"] == t(5)


def test_T_5_a_city_shard_takes_a_late_input_at_its_clock_which_never_goes_back():
    """The production pipeline cannot refuse a message that came late (services/drivers/city_router.py
    counts it): the city shard handles it at its own clock, never earlier."""
    from alarm_ingest.normalized import alarm_from_dict
    from services.drivers.city_shards import RECORD, CorrelatorShard
    from shared.clock import parse_time

    shard = CorrelatorShard("GZ", provincial_internet().build(), RULEBOOK)
    first, late = alarm(5, "P-INT-CPE", "TEMPERATURE"), alarm(3, "P-INT-OTN")
    shard.handle(alarm_from_dict(first["alarm"]), parse_time(first["at"]))
    out, refused = shard.handle(alarm_from_dict(late["alarm"]), parse_time(late["at"]))
    assert refused is None and shard.clock == parse_time(t(5))
    opened = [item[1] for item in out if item[0] == RECORD and item[1]["type"] == "fault.opened"]
    assert [(r["at"], r["opened_at"]) for r in opened] == [(t(5), t(3))]


# ---------------------------------------------------------------------- T-6


def test_T_6_serious_at_is_the_clock_of_fault_serious_and_later_timers_count_from_it():
    # event 10:00, arrival 10:40: serious at 10:40 (overdue TM-1), not at 10:30
    res = run(provincial_internet(), [alarm(40, "P-INT-OTN", event_min=0)], until=t(40 + 125))
    fid = res.one("fault.opened")["fault_id"]
    assert res.one("fault.serious", fault_id=fid)["at"] == t(40)
    onsite = res.one("onsite.required", fault_id=fid, rule="TM-3")
    assert onsite["deadline"] == t(55)                       # TM-3: serious_at + 15 min
    upd = res.one("sms", fault_id=fid, stage="update")
    assert upd["at"] == t(160)                               # TM-6: serious_at + 2 h
    netservice = res.one("work_order.created", queue="prov.netservice")
    assert netservice["arrive_by"] == t(50)                  # TM-4: office hours judged at 10:40


@pytest.mark.parametrize(("end_event", "duration"), [
    pytest.param("2026-11-25T10:00:30.700000+08:00", 30, id="fraction-truncated"),
    pytest.param("2026-11-25T10:10:00+08:00", 600, id="whole-minutes"),
    pytest.param("2026-11-25T09:59:00+08:00", 0, id="end-before-start-never-negative"),
])
def test_T_6_duration_s_is_whole_seconds_never_negative(end_event, duration):
    clear = alarm(20, "P-INT-OTN", state="cleared", alarm_id="T6")
    clear["alarm"]["event_time"] = end_event
    res = run(provincial_internet(), [alarm(0, "P-INT-OTN", alarm_id="T6"), clear])
    cleared = res.one("fault.cleared")
    assert cleared["duration_s"] == duration
    assert cleared["at"] == t(20)


# ---------------------------------------------------------------------- T-7


def test_T_7_timers_due_together_fire_in_fault_opening_order():
    # F-000001 (a data line: no SF row) gets SF-6a's TM-1 from a complaint at 10:05 → due 10:35,
    # scheduled after F-000002's TM-1 (event 10:05, arriving 10:02 → due 10:35). Opening order wins.
    inv = (Inv().customer("P", "provincial", "gold", hq_city="GZ").circuit("P-DATA", "P", "data")
           .customer("Q", "provincial", "gold", hq_city="GZ").circuit("Q-INT", "Q"))
    res = run(inv, [
        alarm(0, "P-DATA-OTN"),
        alarm(2, "Q-INT-OTN", event_min=5),
        complaint(5, "P", service_type="data"),
    ], until=t(40))
    f1 = res.one("fault.opened", circuit_id="P-DATA")["fault_id"]
    f2 = res.one("fault.opened", circuit_id="Q-INT")["fault_id"]
    assert (f1, f2) == ("F-000001", "F-000002")
    s1, s2 = res.one("fault.serious", fault_id=f1), res.one("fault.serious", fault_id=f2)
    assert s1["at"] == s2["at"] == t(35)
    assert (s1["rule"], s2["rule"]) == ("SF-6a", "SF-3")
    assert index(res, "fault.serious", fault_id=f1) < index(res, "fault.serious", fault_id=f2)


def test_T_7_tm1_fires_before_another_timer_of_the_same_fault_due_at_the_same_instant():
    # A provincial customer's CPE outage: RT-3 gives city.GZ.monitoring an order with TM-5's
    # contact_by = 10:30, so TM-10 is due with TM-1 at 10:30. TM-1 first: the fault is serious,
    # so TM-10 (which needs a general fault) reports nothing.
    res = run(provincial_internet(), [alarm(0, "P-INT-CPE")], until=t(31))
    fid = res.one("fault.opened")["fault_id"]
    assert res.one("work_order.created", queue="city.GZ.monitoring")["contact_by"] == t(30)
    assert res.one("fault.serious", fault_id=fid)["at"] == t(30)
    res.none("deadline.missed", rule="TM-10")


def test_T_7_control_without_tm1_the_same_tm10_reports_the_missed_deadline():
    """Control for the test above: a data line has no SF row, so TM-10 alone fires at 10:30."""
    inv = Inv().customer("P", "provincial", "gold", hq_city="GZ").circuit("P-DATA", "P", "data")
    res = run(inv, [alarm(0, "P-DATA-CPE")], until=t(31))
    fid = res.one("fault.opened")["fault_id"]
    res.none("fault.serious")
    missed = res.one("deadline.missed", rule="TM-10")
    assert (missed["fault_id"], missed["at"], missed["deadline"]) == (fid, t(30), t(30))


def test_T_3_several_overdue_timers_of_a_late_alarm_fire_at_its_arrival():
    # CPE outage (customer side) of a provincial customer, event 10:00, arriving 10:40:
    # TM-2 (10:15) and TM-1 (10:30) are overdue and fire at 10:40, deadlines from their due times.
    res = run(provincial_internet(), [alarm(40, "P-INT-CPE", event_min=0)], until=t(41))
    fid = res.one("fault.opened")["fault_id"]
    onsite = res.one("onsite.required", fault_id=fid)             # TM-2 first; TM-3 adds nothing
    assert (onsite["rule"], onsite["at"], onsite["deadline"]) == ("TM-2", t(40), t(40))
    assert res.one("fault.serious", fault_id=fid)["at"] == t(40)


def test_T_3_overdue_flapping_end_timer_fires_at_the_late_clear():
    # three flaps; the third one's clear (event 10:21) arrives at 11:00, after the 30-min quiet time
    events = []
    for s in (0, 10, 20):
        events += raise_clear("O-INT-OTN", s, s + 1)
    events[-1]["at"] = t(60)
    res = run(Inv().customer("O").circuit("O-INT", "O"), events, until=t(90))
    flap = res.one("fault.opened", probable_cause="FLAPPING")
    assert (flap["opened_at"], flap["at"]) == (t(21), t(60))
    ended = res.one("fault.cleared", fault_id=flap["fault_id"])
    assert (ended["at"], ended["ended_at"]) == (t(60), t(51))


def test_T_4_root_and_opened_at_stand_when_an_earlier_alarm_arrives_later():
    inv = Inv().customer("O")
    inv.resource("RA", "transmission").resource("RB1", "transmission").resource("RB2", "data")
    inv.circuit("O-DUAL", "O", paths=[["RA"], ["RB1", "RB2"]])
    res = run(inv, [alarm(1, "RA", event_min=0), alarm(6, "RB1", event_min=5, alarm_id="b1"),
                    alarm(7, "RB2", event_min=3, alarm_id="b2"),       # path B was down earlier
                    alarm(20, "RB1", state="cleared", alarm_id="b1"),
                    alarm(25, "RB2", state="cleared", alarm_id="b2")])
    opened = res.one("fault.opened")
    assert (opened["opened_at"], opened["root_resource"]) == (t(5), "RB1")   # fixed when it opened
    cleared = res.one("fault.cleared")
    assert (cleared["ended_at"], cleared["duration_s"]) == (t(25), 20 * 60)
