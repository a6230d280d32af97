"""RULES.md §2 From alarms to circuit state: AL-1 … AL-8."""

import itertools

import pytest
from scenario import Inv, alarm, raise_clear, run, t


def sec(seconds: float) -> str:
    return t(seconds / 60)


def ordinary_internet() -> Inv:
    """A city-level standard customer: no SF row applies, so no timer interferes."""
    return Inv().customer("O").circuit("O-INT", "O")


def dual_route() -> Inv:
    """Two paths sharing nothing: A = [RA1 transmission, RA2 data], B = [RB1 transmission, RB2 data]."""
    inv = Inv().customer("O")
    inv.resource("RA1", "transmission").resource("RA2", "data")
    inv.resource("RB1", "transmission").resource("RB2", "data")
    return inv.circuit("O-DUAL", "O", paths=[["RA1", "RA2"], ["RB1", "RB2"]])


def opened_times(res) -> list[str]:
    return [r["opened_at"] for r in res.of("fault.opened")]


# ---------------------------------------------------------------------- AL-1


def _a(at, state="raised", event=None, aid="K1", source="nms-1"):
    return alarm(at, "O-INT-OTN", "LOS", state, event_min=event, alarm_id=aid, source=source)


@pytest.mark.parametrize(("events", "opened", "cleared"), [
    pytest.param([_a(0), _a(2, event=2), _a(10, "cleared")], [t(0)], [t(10)],
                 id="repeat-raise-while-active-is-the-same-alarm"),
    pytest.param([_a(0), _a(10, "cleared"), _a(20)], [t(0), t(20)], [t(10)],
                 id="raise-after-clear-is-a-new-occurrence"),
    pytest.param([_a(0), _a(10, "cleared"), _a(12, event=10)], [t(0)], [t(10)],
                 id="raise-at-the-last-clear-is-born-cleared"),
    pytest.param([_a(0), _a(10, "cleared"), _a(12, event=9)], [t(0)], [t(10)],
                 id="raise-before-the-last-clear-is-born-cleared"),
    pytest.param([_a(0, "cleared"), _a(1, event=-1)], [], [],
                 id="tombstone-swallows-an-earlier-raise"),
    pytest.param([_a(0, "cleared"), _a(1, event=0)], [], [],
                 id="tombstone-swallows-a-raise-at-its-time"),
    pytest.param([_a(0, "cleared"), _a(1, event=1)], [t(1)], [],
                 id="raise-after-the-tombstone-opens"),
    pytest.param([_a(0), _a(1, source="nms-2"), _a(10, "cleared")], [t(0)], [],
                 id="same-alarm-id-other-source-is-another-alarm"),
])
def test_AL_1_deduplication_by_source_and_alarm_id(events, opened, cleared):
    res = run(ordinary_internet(), events, until=t(60))
    assert opened_times(res) == opened
    assert [r["ended_at"] for r in res.of("fault.cleared")] == cleared


def test_AL_1_a_clear_of_one_duplicate_key_ends_it_even_after_repeats():
    res = run(ordinary_internet(), [_a(0), _a(1, event=1), _a(2, event=2), _a(5, "cleared")])
    cleared = res.one("fault.cleared")
    assert (cleared["ended_at"], cleared["duration_s"]) == (t(5), 300)


# ---------------------------------------------------------------------- AL-2


@pytest.mark.parametrize(("cause", "kind"), [
    *[pytest.param(c, "outage", id=c) for c in (
        "LOS", "LOF", "LINK_DOWN", "PORT_DOWN", "NE_UNREACHABLE", "NE_DOWN", "POWER_FAILURE",
        "BOARD_FAILURE", "FIBER_CUT", "BGP_DOWN", "TUNNEL_DOWN", "GATEWAY_CONN_LOST", "APN_DOWN",
        "SMS_UPLINK_DOWN", "SMS_DOWNLINK_DOWN", "PROTOCOL_CONVERTER_DOWN", "TRUNK_DOWN")],
    *[pytest.param(c, "degradation", id=c) for c in (
        "PACKET_LOSS", "HIGH_BER", "HIGH_LATENCY", "FLAPPING", "BANDWIDTH_LOW")],
    *[pytest.param(c, None, id=c) for c in ("TEMPERATURE", "FAN", "POWER_REDUNDANCY_LOST", "OTHER",
                                            "SOMETHING_NEW")],
])
def test_AL_2_cause_class_decides_the_fault_kind(cause, kind):
    res = run(ordinary_internet(), [alarm(0, "O-INT-OTN", cause)])
    if kind is None:
        res.none("fault.opened")
        return
    opened = res.one("fault.opened")
    assert (opened["kind"], opened["probable_cause"], opened["root_resource"]) == (kind, cause, "O-INT-OTN")


# ---------------------------------------------------------------------- AL-3


def test_AL_3_dual_route_stays_up_while_one_path_is_clean():
    res = run(dual_route(), [alarm(0, "RA1"), alarm(1, "RA2"), alarm(5, "RB2", "PACKET_LOSS")],
              until=t(60))
    opened = res.one("fault.opened")            # only the degradation on path B
    assert opened["kind"] == "degradation"
    res.none("fault.opened", kind="outage")


_AL3_ALARMS = [
    ("RA2", "LINK_DOWN", 0),    # path A down from 10:00 (its earliest alarm)
    ("RA1", "LOS", 2),
    ("RB1", "FIBER_CUT", 5),    # path B down from 10:05: the latest path completes it
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))),
                         ids=lambda o: "arrive-" + "-".join(_AL3_ALARMS[i][0] for i in o))
def test_AL_3_interrupted_from_the_latest_path_down_time_whatever_the_arrival_order(order):
    events = [alarm(10 + n, _AL3_ALARMS[i][0], _AL3_ALARMS[i][1], event_min=_AL3_ALARMS[i][2])
              for n, i in enumerate(order)]
    res = run(dual_route(), events)
    opened = res.one("fault.opened", kind="outage")
    assert opened["opened_at"] == t(5)
    assert (opened["root_resource"], opened["probable_cause"], opened["layer"]) == \
        ("RB1", "FIBER_CUT", "transmission")
    pos = {_AL3_ALARMS[i][0]: n for n, i in enumerate(order)}
    assert opened["at"] == t(10 + max(pos["RB1"], min(pos["RA1"], pos["RA2"])))   # both paths down


@pytest.mark.parametrize("first", ["RA1", "RA2"])
def test_AL_3_path_down_time_is_its_earliest_active_outage_alarm(first):
    # path B down from 10:00; path A holds alarms from 10:05 (RA1) and 10:03 (RA2): down from 10:03
    a = {"RA1": alarm(10, "RA1", "LOS", event_min=5), "RA2": alarm(10, "RA2", "PORT_DOWN", event_min=3)}
    second = "RA2" if first == "RA1" else "RA1"
    a[second]["at"] = t(11)
    res = run(dual_route(), [a[first], a[second], alarm(12, "RB1", "LOS", event_min=0)])
    opened = res.one("fault.opened")
    assert (opened["opened_at"], opened["root_resource"], opened["probable_cause"]) == \
        (t(3), "RA2", "PORT_DOWN")


@pytest.mark.parametrize(("clears", "ended"), [
    pytest.param([("RA1", 15), ("RA2", 20)], t(20), id="path-A-clean-first"),
    pytest.param([("RB1", 25)], t(25), id="path-B-clean-first"),
    pytest.param([("RA1", 15), ("RB1", 25)], t(25), id="partial-clear-of-path-A-is-not-recovery"),
    pytest.param([("RA2", 15), ("RB1", 25)], t(25), id="other-partial-clear-of-path-A"),
])
def test_AL_3_recovers_at_the_first_moment_one_path_is_clean(clears, ended):
    ids = {"RA1": "a1", "RA2": "a2", "RB1": "b1"}
    events = [alarm(0, "RA1", alarm_id="a1"), alarm(0, "RA2", alarm_id="a2"), alarm(1, "RB1", alarm_id="b1")]
    events += [alarm(m, rid, state="cleared", alarm_id=ids[rid]) for rid, m in clears]
    res = run(dual_route(), events)
    opened = res.one("fault.opened")
    assert opened["opened_at"] == t(1) and opened["root_resource"] == "RB1"
    assert res.one("fault.cleared")["ended_at"] == ended


def test_AL_3_recovery_time_is_the_clear_event_time_not_its_arrival():
    res = run(ordinary_internet(), [alarm(0, "O-INT-OTN", alarm_id="x"),
                                    alarm(30, "O-INT-OTN", state="cleared", event_min=12, alarm_id="x")])
    cleared = res.one("fault.cleared")
    assert (cleared["at"], cleared["ended_at"], cleared["duration_s"]) == (t(30), t(12), 720)


def test_AL_3_shared_cpe_interrupts_both_paths_at_once():
    inv = Inv().customer("O").resource("CPE", "cpe")
    inv.resource("RA", "transmission").resource("RB", "transmission")
    inv.circuit("O-DUAL", "O", paths=[["CPE", "RA"], ["CPE", "RB"]])
    res = run(inv, [alarm(3, "CPE", "POWER_FAILURE")])
    opened = res.one("fault.opened")
    assert (opened["root_resource"], opened["cause_side"], opened["layer"], opened["opened_at"]) == \
        ("CPE", "customer", "cpe", t(3))


# ---------------------------------------------------------------------- AL-4


def test_AL_4_degraded_while_not_interrupted_and_ends_with_the_last_degradation_alarm():
    res = run(dual_route(), [
        alarm(0, "RB2", "PACKET_LOSS", alarm_id="d1"),
        alarm(2, "RA1", "HIGH_BER", alarm_id="d2"),       # a second one: still the same fault
        alarm(5, "RB2", "PACKET_LOSS", "cleared", alarm_id="d1"),
        alarm(9, "RA1", "HIGH_BER", "cleared", alarm_id="d2"),
    ])
    opened = res.one("fault.opened")
    assert (opened["kind"], opened["root_resource"], opened["probable_cause"], opened["opened_at"]) == \
        ("degradation", "RB2", "PACKET_LOSS", t(0))
    assert opened["cause_side"] == "core" and opened["layer"] == "data"
    cleared = res.one("fault.cleared")
    assert (cleared["ended_at"], cleared["duration_s"]) == (t(9), 540)


def test_AL_4_no_degradation_fault_while_interrupted():
    res = run(ordinary_internet(), [alarm(0, "O-INT-OTN"), alarm(3, "O-INT-PE", "PACKET_LOSS")])
    assert [r["kind"] for r in res.of("fault.opened")] == ["outage"]


# ---------------------------------------------------------------------- AL-5


def flaps(resource: str, starts: list[float], length_s: float = 60) -> list[dict]:
    out = []
    for s in starts:
        out += raise_clear(resource, s, s + length_s / 60)
    return out


def test_AL_5_third_flap_within_30_minutes_opens_a_flapping_degradation_fault():
    res = run(ordinary_internet(), flaps("O-INT-OTN", [0, 10, 20]), until=t(120))
    outages = res.of("fault.opened", kind="outage")
    assert [r["opened_at"] for r in outages] == [t(0), t(10), t(20)]          # the flaps stand
    assert len(res.of("fault.cleared")) == 4
    flap = res.one("fault.opened", probable_cause="FLAPPING")
    assert flap["kind"] == "degradation" and flap["circuit_id"] == "O-INT"
    assert flap["opened_at"] == t(21) and flap["at"] == t(21)                 # the third flap's end
    assert flap["root_resource"] == "O-INT-OTN"
    ended = res.one("fault.cleared", fault_id=flap["fault_id"])
    assert ended["ended_at"] == t(51) and ended["at"] == t(51)                # up for 30 min
    assert ended["duration_s"] == 30 * 60 and ended["severity"] == "general"


def test_AL_5_flapping_root_is_the_third_flaps_root():
    events = flaps("O-INT-OTN", [0, 10]) + flaps("O-INT-PE", [20])
    res = run(ordinary_internet(), events, until=t(30))
    assert res.one("fault.opened", probable_cause="FLAPPING")["root_resource"] == "O-INT-PE"


@pytest.mark.parametrize(("starts", "length_s", "flapping_at"), [
    pytest.param([0, 10, 20], 120, t(22), id="two-minutes-is-a-flap"),
    pytest.param([0, 10, 20], 121, None, id="two-minutes-one-second-is-not"),
    pytest.param([0, 15, 30], 60, t(31), id="three-opened-exactly-30-min-apart"),
    pytest.param([0, 15, 30 + 1 / 60], 60, None, id="three-opened-30m01s-apart"),
    pytest.param([0, 15, 30 + 1 / 60, 40], 60, t(41), id="window-slides-to-the-last-three"),
    pytest.param([0, 10], 60, None, id="two-flaps-only"),
])
def test_AL_5_flap_length_and_window_boundaries(starts, length_s, flapping_at):
    res = run(ordinary_internet(), flaps("O-INT-OTN", starts, length_s), until=t(200))
    found = res.of("fault.opened", probable_cause="FLAPPING")
    assert [r["opened_at"] for r in found] == ([flapping_at] if flapping_at else [])


def test_AL_5_further_flaps_join_it_and_push_its_end():
    res = run(ordinary_internet(), flaps("O-INT-OTN", [0, 10, 20, 40, 45]), until=t(200))
    flap = res.one("fault.opened", probable_cause="FLAPPING")          # no second one
    assert flap["opened_at"] == t(21)
    assert res.one("fault.cleared", fault_id=flap["fault_id"])["ended_at"] == t(76)
    assert len(res.of("fault.opened", kind="outage")) == 5


def test_AL_5_long_outage_while_flapping_delays_the_end_until_30_min_after_up():
    events = flaps("O-INT-OTN", [0, 10, 20]) + raise_clear("O-INT-OTN", 30, 60)
    res = run(ordinary_internet(), events, until=t(200))
    flap = res.one("fault.opened", probable_cause="FLAPPING")
    assert res.one("fault.cleared", fault_id=flap["fault_id"])["ended_at"] == t(90)


# ---------------------------------------------------------------------- AL-6


def shared_otn() -> Inv:
    inv = Inv().customer("O1").customer("O2").resource("SHARED-OTN", "transmission")
    inv.circuit("C1", "O1", paths=[["C1-CPE", "SHARED-OTN", "C1-PE"]])
    inv.circuit("C2", "O2", paths=[["C2-CPE", "SHARED-OTN", "C2-PE"]])
    return inv


def test_AL_6_one_cut_under_two_circuits_is_one_incident():
    res = run(shared_otn(), [alarm(0, "SHARED-OTN", "FIBER_CUT")])
    opened = res.of("fault.opened")
    assert [r["circuit_id"] for r in opened] == ["C1", "C2"]
    assert {r["root_resource"] for r in opened} == {"SHARED-OTN"}
    assert opened[0]["incident_id"] == opened[1]["incident_id"]


@pytest.mark.parametrize(("second_start", "same"), [
    pytest.param(4, True, id="4-min"),
    pytest.param(5, True, id="exactly-5-min-inclusive"),
    pytest.param(5 + 1 / 60, False, id="5m01s"),
])
def test_AL_6_same_root_within_5_minutes_of_the_first_fault(second_start, same):
    events = raise_clear("O-INT-OTN", 0, 3) + [alarm(second_start, "O-INT-OTN")]
    res = run(ordinary_internet(), events)
    first, second = res.of("fault.opened")
    assert (first["incident_id"] == second["incident_id"]) is same


def test_AL_6_incident_window_is_not_chained():
    events = raise_clear("O-INT-OTN", 0, 3) + raise_clear("O-INT-OTN", 4, 7) + [alarm(8, "O-INT-OTN")]
    res = run(ordinary_internet(), events)
    f1, f2, f3 = res.of("fault.opened")
    assert f1["incident_id"] == f2["incident_id"]          # 4 min after the first
    assert f3["incident_id"] != f1["incident_id"]          # 8 min after the first, 4 after the second


def test_AL_6_different_roots_are_different_incidents():
    inv = shared_otn()
    res = run(inv, [alarm(0, "C1-PE"), alarm(1, "C2-PE")])
    f1, f2 = res.of("fault.opened")
    assert (f1["root_resource"], f2["root_resource"]) == ("C1-PE", "C2-PE")
    assert f1["incident_id"] != f2["incident_id"]


def test_AL_6_degradation_root_is_its_first_degradation_alarm():
    res = run(ordinary_internet(), [alarm(0, "O-INT-PE", "HIGH_LATENCY"), alarm(1, "O-INT-OTN", "HIGH_BER")])
    opened = res.one("fault.opened")
    assert (opened["root_resource"], opened["probable_cause"]) == ("O-INT-PE", "HIGH_LATENCY")


# ---------------------------------------------------------------------- AL-7


def test_AL_7_unmapped_alarm_is_kept_counted_and_opens_no_fault():
    res = run(ordinary_internet(), [
        alarm(0, "NOT-IN-INVENTORY", alarm_id="u1", source="nms-9"),
        alarm(1, "NOT-IN-INVENTORY", alarm_id="u1", source="nms-9"),          # a repeat
        alarm(2, "NOT-IN-INVENTORY", state="cleared", alarm_id="u1", source="nms-9"),
    ])
    rec = res.one("alarm.unmapped")
    assert (rec["source"], rec["alarm_id"], rec["resource_id"], rec["at"]) == \
        ("nms-9", "u1", "NOT-IN-INVENTORY", t(0))
    res.none("fault.opened")
    assert res.status == 0


# ---------------------------------------------------------------------- AL-8


def test_AL_8_degraded_circuit_that_becomes_interrupted_changes_fault():
    res = run(ordinary_internet(), [alarm(0, "O-INT-PE", "PACKET_LOSS"), alarm(10, "O-INT-OTN", event_min=9)])
    deg = res.one("fault.opened", kind="degradation")
    out = res.one("fault.opened", kind="outage")
    cleared = res.one("fault.cleared", fault_id=deg["fault_id"])
    assert cleared["ended_at"] == t(9) and cleared["duration_s"] == 540
    assert out["opened_at"] == t(9) and out["root_resource"] == "O-INT-OTN"
    types = res.types()
    assert types.index("fault.cleared") < len(types) - 1 - types[::-1].index("fault.opened")


def test_AL_8_interrupted_circuit_that_recovers_into_degradation_changes_fault():
    res = run(ordinary_internet(), [
        alarm(0, "O-INT-OTN", alarm_id="o"),
        alarm(5, "O-INT-PE", "PACKET_LOSS", alarm_id="d"),
        alarm(10, "O-INT-OTN", state="cleared", alarm_id="o"),
        alarm(20, "O-INT-PE", "PACKET_LOSS", "cleared", alarm_id="d"),
    ])
    out = res.one("fault.opened", kind="outage")
    deg = res.one("fault.opened", kind="degradation")
    assert res.one("fault.cleared", fault_id=out["fault_id"])["ended_at"] == t(10)
    assert (deg["opened_at"], deg["at"], deg["root_resource"], deg["probable_cause"]) == \
        (t(10), t(10), "O-INT-PE", "PACKET_LOSS")
    assert res.one("fault.cleared", fault_id=deg["fault_id"])["ended_at"] == t(20)


def test_AL_3_path_down_time_ignores_cleared_alarms():
    res = run(dual_route(), [alarm(0, "RA1", alarm_id="a1"), alarm(3, "RA2", alarm_id="a2"),
                             alarm(4, "RA1", state="cleared", alarm_id="a1"),
                             alarm(5, "RB1", "FIBER_CUT", event_min=2)])
    opened = res.one("fault.opened")
    assert (opened["opened_at"], opened["root_resource"], opened["probable_cause"]) == (t(3), "RA2", "LOS")


def test_AL_1_raise_before_a_later_repeated_clear_is_born_cleared():
    res = run(ordinary_internet(), [_a(0), _a(10, "cleared"), _a(15, "cleared"), _a(16, event=12)],
              until=t(60))
    assert opened_times(res) == [t(0)]
    assert res.one("fault.cleared")["ended_at"] == t(10)


def test_AL_7_a_city_shard_reports_only_resources_the_inventory_lacks():
    """A city's shard holds the resources of its own circuits and makes the others' state when
    an alarm names them: an alarm on an inventory resource under no circuit of the city is not
    `alarm.unmapped`; one on a resource the inventory lacks is, as in replay."""
    from pathlib import Path

    from services.drivers.stage_logic import CorrelateLogic
    from shared.inventory import load_inventory
    from shared.rulebook import load_rulebook

    inventory = load_inventory(Path(__file__).resolve().parents[2] / "samples" / "inventory.json")
    logic = CorrelateLogic(inventory, load_rulebook())
    core = logic.new_shard("GZ")
    elsewhere = next(rid for rid in inventory.resources if "GZ" not in inventory.a_cities_on(rid))
    assert elsewhere not in core.correlator.resources            # not built with the shard

    def step(seq: int, resource: str) -> list[str]:
        body = {"at": 1_764_036_000 + seq, "source": f"s-{seq}", "input": {"kind": "alarm", "alarm": {
            "source": "nms-1", "alarm_id": f"A{seq}", "resource_id": resource, "probable_cause": "LOS",
            "severity": "critical", "state": "raised", "event_time": "2026-11-25T10:00:00+08:00"}}}
        return [r["type"] for r in logic.step(core, body, seq)[0].records]

    assert step(1, elsewhere) == []
    assert elsewhere in core.correlator.resources
    assert step(2, "NOT-IN-INVENTORY") == ["alarm.unmapped"]
