"""Issue 13: the split pipeline (city shards, as production runs them) decides every input as
`faultline replay` does, ids aside — operator actions with every `select` form included, and
their CL-4 refusals, when the faults a select may mean sit in different shards.

Random event files on an inventory built for it: a provincial customer whose internet
circuits are in three cities of three correlation groups (one of them cross-city), a GZ–SZ
trunk that joins two cities into one group, ordinary customers sharing an FS access node,
a customer with no circuit of the services it complains about, resources not in the
inventory. Fault ids differ between the modes (`F-GZ-000001` against `F-000001`), so an
action naming a fault by id names "the k-th fault opened" (by what it is, the same in both
modes) and each mode is given its own id for it; refusals are compared with their fault ids
replaced by what the faults are.
"""

from __future__ import annotations

import io
import re
from collections import Counter

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario import RULEBOOK, Inv, action, alarm, complaint, t

from services.commands.replay import Replay
from services.drivers.pipeline import Pipeline
from services.drivers.sharding import Ask, select_shards
from services.drivers.split import SplitPipeline
from shared.clock import parse_time
from shared.model import Select
from tools.kafka_events import canonical

TRUNK = "GD-POTN-GZ-SZ:1-1-1"


def select_inventory() -> Inv:
    return (Inv()
            .customer("P-NH", "provincial", hq_city="GZ")
            .customer("P-SZ", "provincial", hq_city="SZ")
            .customer("C-FS-1").customer("C-FS-2").customer("C-FS-3").customer("C-FS-4", grade="silver")
            .customer("C-DG-1", grade="bronze")
            .resource(TRUNK, "transmission", "GZ", "province")
            .resource("FS-OLT-1", "access", "FS")
            # P-NH's internet: GZ (over the trunk), FS, and DG→GZ across cities (a complaint in
            # GZ may join a fault of the GZ or of the DG shard, SV-5); voice in GZ, data DG→HZ.
            .circuit("NH-GZ-1", "P-NH", a_city="GZ", paths=[["NH-GZ-1-CPE", TRUNK, "NH-GZ-1-PE"]])
            .circuit("NH-FS-1", "P-NH", a_city="FS")
            .circuit("NH-DG-1", "P-NH", a_city="DG", z_city="GZ", span="cross_city")
            .circuit("NH-GZ-V", "P-NH", "voice", a_city="GZ")
            .circuit("NH-DG-D", "P-NH", "data", a_city="DG", z_city="HZ", span="cross_city")
            .circuit("SZ-INT-1", "P-SZ", a_city="SZ", paths=[["SZ-INT-1-CPE", TRUNK, "SZ-INT-1-PE"]])
            .circuit("FS-1", "C-FS-1", a_city="FS", paths=[["FS-1-CPE", "FS-OLT-1", "FS-1-PE"]])
            .circuit("FS-2", "C-FS-2", a_city="FS", paths=[["FS-2-CPE", "FS-OLT-1", "FS-2-PE"]])
            .circuit("FS-3", "C-FS-3", a_city="FS", paths=[["FS-3-CPE", "FS-OLT-1", "FS-3-PE"]])
            .circuit("FS-4", "C-FS-4", a_city="FS")
            .circuit("DG-1", "C-DG-1", a_city="DG"))


INV_DOC = select_inventory()
INVENTORY = INV_DOC.build()
RESOURCES = sorted(INVENTORY.resources) + ["GZ-PE-99:GE9/9/9"]
CIRCUITS = sorted(INVENTORY.circuits) + ["XX-NOPE-1"]
CUSTOMERS = sorted(INVENTORY.customers) + ["C-NOPE"]
CITIES = ["GZ", "SZ", "FS", "DG", "HZ", "XX"]
SERVICES = ["internet", "voice", "data"]
QUEUES = ["prov.monitoring", "city.FS.monitoring", "city.GZ.monitoring", "prov.specialist.transmission"]
EXTRA = {"confirm": [{"impact": "full_block"}, {"impact": "no_impact"}],
         "attribution": [{"attribution": "not_ours"}, {"attribution": "ours"}],
         "ack": [{"queue": q} for q in QUEUES],
         "resolve": [{}],
         "escalate": [{"reason": r} for r in ("ES-4", "ES-5", "ES-6", "ES-7")]}


def test_the_inventory_puts_one_customers_service_in_three_shards():
    """What the generator relies on: a customer select without a city asks every shard."""
    assert {INVENTORY.group_of(c) for c in ("GZ", "SZ", "FS", "DG")} == {"GZ", "FS", "DG"}
    assert select_shards(INVENTORY, Select(customer_id="P-NH", service_type="internet")) == \
        Ask(("DG", "FS", "GZ", "HZ", "-"))


@st.composite
def selects(draw):
    form = draw(st.sampled_from(["fault", "fault", "circuit", "customer", "customer", "customer_city",
                                 "city"]))
    if form == "fault":
        return {"fault_ref": draw(st.integers(min_value=0, max_value=12))}
    if form == "circuit":
        return {"circuit_id": draw(st.sampled_from(CIRCUITS))}
    if form == "city":
        return {"city": draw(st.sampled_from(CITIES)), "service_type": draw(st.sampled_from(SERVICES))}
    sel = {"customer_id": draw(st.sampled_from(CUSTOMERS)), "service_type": draw(st.sampled_from(SERVICES))}
    if form == "customer_city":
        sel["city"] = draw(st.sampled_from(CITIES))
    return sel


@st.composite
def event_files(draw):
    """Alarms, complaints and operator actions of every kind and select form, interleaved."""
    events: list[dict] = []
    minute = 0.0
    active: list[tuple[str, str, str]] = []
    for n in range(draw(st.integers(min_value=1, max_value=45))):
        minute += draw(st.sampled_from([0, 0, 0.5, 1, 5, 14, 31]))
        what = draw(st.sampled_from(["raise", "raise", "clear", "complaint", "complaint", "action",
                                     "action", "action"]))
        if what == "raise":
            rid = draw(st.sampled_from(RESOURCES))
            cause = draw(st.sampled_from(["LOS", "LINK_DOWN", "PACKET_LOSS", "FAN"]))
            lag = draw(st.sampled_from([0, 0, 1, 45]))
            events.append(alarm(minute, rid, cause, event_min=minute - lag, alarm_id=f"E{n}"))
            active.append((rid, cause, f"E{n}"))
        elif what == "clear" and active:
            rid, cause, aid = active.pop(draw(st.integers(min_value=0, max_value=len(active) - 1)))
            events.append(alarm(minute, rid, cause, "cleared", alarm_id=aid))
        elif what == "complaint":
            events.append(complaint(minute, draw(st.sampled_from(CUSTOMERS)), draw(st.sampled_from(CITIES)),
                                    draw(st.sampled_from(SERVICES)),
                                    channel=draw(st.sampled_from(["10086-8", "400", "direct"])),
                                    scope=draw(st.sampled_from(["all_users", "partial"])),
                                    cid=f"C{draw(st.integers(min_value=0, max_value=n))}"))
        else:
            kind = draw(st.sampled_from(sorted(EXTRA)))
            events.append(action(minute, kind, draw(selects()), **draw(st.sampled_from(EXTRA[kind]))))
    return events, t(minute + draw(st.sampled_from([1, 600])))


# ---------------------------------------------------------------------- one mode's run


FAULT_ID = re.compile(r"F-[A-Za-z0-9-]*?\d{6}\b")


def fault_names(records: list[dict]) -> dict[str, str]:
    """fault id → what the fault is (as tools/kafka_events.canonical names it)."""
    return {r["fault_id"]: "|".join(str(r[k]) for k in ("kind", "circuit_id", "customer_id", "city",
                                                          "service_type", "opened_at", "at"))
            for r in records if r["type"] == "fault.opened"}


def run_mode(pipeline_cls, events: list[dict], until: str) -> list[dict]:
    return fed_lines(pipeline_cls, events, until)[0]


def fed_lines(pipeline_cls, events: list[dict], until: str) -> tuple[list[dict], list[bytes]]:
    """Replay the events line by line through one mode, giving a `fault_ref` select that mode's
    id of the k-th fault opened so far (faults ordered by what they are, the same in both):
    the records, and the lines as fed. The split pipeline's ids are production's (the same
    shards, the same per-shard counters), so its lines are what production is sent."""
    out = io.BytesIO()
    replay = Replay(pipeline_cls(INVENTORY, RULEBOOK), out)
    lines = []
    for lineno, event in enumerate(events, 1):
        if "fault_ref" in event.get("select", {}):
            names = fault_names([orjson.loads(x) for x in out.getvalue().splitlines()])
            ordered = sorted(names, key=names.get)
            k = event["select"]["fault_ref"]
            fault_id = ordered[k] if k < len(ordered) else "F-GZ-999999"     # unknown in both modes
            event = {**event, "select": {"fault_id": fault_id}}
        lines.append(orjson.dumps(event))
        replay.feed_line(lineno, lines[-1])
    replay.finish(parse_time(until))
    return [orjson.loads(x) for x in out.getvalue().splitlines()], lines


def canonical_reasons(reasons: list[str], records: list[dict]) -> Counter:
    """Refusal reasons with their fault ids replaced by what the faults are (`records`: the
    decisions that name them); a list of several sorted: each mode lists them in its own
    opening order."""
    names = fault_names(records)

    def name(m: re.Match) -> str:
        return names.get(m.group(0), "<unknown fault>")

    def one(reason: str) -> str:
        reason = FAULT_ID.sub(name, reason)
        return re.sub(r"\(([^()]*)\); name one",
                      lambda m: "(" + ", ".join(sorted(m.group(1).split(", "))) + "); name one", reason)

    return Counter(one(r) for r in reasons)


def refusals(records: list[dict]) -> Counter:
    """Each refusal as (line, reason), canonical as canonical_reasons makes it."""
    out: Counter = Counter()
    for r in records:
        if r["type"] == "input.rejected":
            (reason,) = canonical_reasons([r["reason"]], records)
            out[(r["line"], reason)] += 1
    return out


def assert_same_decisions(events: list[dict], until: str) -> None:
    one = run_mode(Pipeline, events, until)
    split = run_mode(SplitPipeline, events, until)
    a, b = canonical(one), canonical(split)
    assert a == b, {"only in replay": list((a - b).elements())[:5],
                    "only in split": list((b - a).elements())[:5]}
    ra, rb = refusals(one), refusals(split)
    assert ra == rb, {"only in replay": list((ra - rb).elements())[:5],
                      "only in split": list((rb - ra).elements())[:5]}


# ---------------------------------------------------------------------- the cases of the issue


def test_CL4_customer_select_on_a_complaint_fault_of_a_customer_without_a_circuit_of_that_service():
    """P-SZ has no voice circuit: its voice complaint in FS opens a complaint fault in FS's
    shard; {customer_id, service_type} finds it there, in both modes."""
    events = [complaint(0, "P-SZ", "FS", "voice", cid="K1"),
              action(5, "confirm", {"customer_id": "P-SZ", "service_type": "voice"}, impact="no_impact"),
              action(6, "resolve", {"customer_id": "P-SZ", "service_type": "voice"}),
              action(7, "resolve", {"customer_id": "P-SZ", "service_type": "voice"})]
    split = run_mode(SplitPipeline, events, t(60))
    assert [(r["type"], r.get("fault_id") or r.get("reason")) for r in split
            if r["type"] in ("fault.opened", "fault.cleared", "input.rejected")] == [
        ("fault.opened", "F-FS-000001"), ("fault.cleared", "F-FS-000001"),      # resolved at 10:06
        ("input.rejected", "select {customer_id=P-SZ, service_type=voice} matches no open fault")]
    assert_same_decisions(events, t(60))


def test_CL4_customer_select_whose_circuits_of_the_service_span_cities():
    """P-NH's internet circuits are in three shards. One fault open: the select means it (SV-3
    stops its TM-1 in the FS shard). Two open, in two shards: refused naming both, as replay."""
    events = [alarm(0, "NH-FS-1-CPE", alarm_id="X1"),
              action(1, "attribution", {"customer_id": "P-NH", "service_type": "internet"},
                     attribution="not_ours"),
              action(2, "confirm", {"customer_id": "P-NH", "service_type": "internet"}, impact="no_impact"),
              alarm(3, "NH-DG-1-CPE", alarm_id="X2"),
              action(4, "ack", {"customer_id": "P-NH", "service_type": "internet"}, queue="prov.monitoring"),
              alarm(5, "NH-FS-1-CPE", state="cleared", alarm_id="X1"),
              action(6, "escalate", {"customer_id": "P-NH", "service_type": "internet"}, reason="ES-6")]
    split = run_mode(SplitPipeline, events, t(120))
    assert [(r["fault_id"], r["attribution"]) for r in split if r["type"] == "fault.attributed"] == \
        [("F-FS-000001", "not_ours")]
    rejected = [(r["line"], r["reason"]) for r in split if r["type"] == "input.rejected"]
    assert rejected == [(5, "select {customer_id=P-NH, service_type=internet} matches 2 open faults "
                            "(F-FS-000001, F-DG-000001); name one by fault_id")]
    # Once the FS fault has cleared, the select means the DG one: escalated (ES-6).
    assert [(r["fault_id"], r["reason"]) for r in split if r["type"] == "escalation"] == \
        [("F-DG-000001", "ES-6")]
    assert_same_decisions(events, t(120))


def test_SV5_a_complaint_joins_the_earliest_fault_of_the_service_in_its_city_whichever_shard_holds_it():
    """P-NH's internet in GZ: NH-GZ-1 (GZ's shard) and NH-DG-1, DG→GZ (DG's shard). The DG
    fault opened first; its TM-1 is stopped (SV-3). A GZ complaint by all users joins it
    (SV-5) and starts SF-6a's 30 minutes on it; the same complaint id again, from FS,
    changes nothing (no complaint fault, no second TM-1)."""
    events = [alarm(0, "NH-DG-1-CPE", alarm_id="X1", event_min=-3),
              alarm(1, "NH-GZ-1-CPE", alarm_id="X2"),
              action(1.5, "confirm", {"circuit_id": "NH-DG-1"}, impact="no_impact"),
              complaint(2, "P-NH", "GZ", "internet", cid="K1"),
              complaint(3, "P-NH", "FS", "internet", cid="K1")]
    split = run_mode(SplitPipeline, events, t(60))
    assert [(r["fault_id"], r["kind"]) for r in split if r["type"] == "fault.opened"] == \
        [("F-DG-000001", "outage"), ("F-GZ-000001", "outage")]
    assert sorted((r["fault_id"], r["rule"], r["at"]) for r in split if r["type"] == "fault.serious") == [
        ("F-DG-000001", "SF-6a", t(32)),        # SF-6a: 30 minutes from the complaint it joined
        ("F-GZ-000001", "SF-3", t(31))]
    assert_same_decisions(events, t(60))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_files())
def test_CL4_random_event_files_decide_in_the_split_pipeline_as_in_replay(file):
    events, until = file
    assert_same_decisions(events, until)
