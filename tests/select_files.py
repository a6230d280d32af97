"""Event files for issue 13's equivalence tests (split pipeline, `faultline run`, the Kafka
processes): an inventory where one customer's service sits in three correlation groups, and
random alarms, complaints and operator actions of every kind and select form on it.

Fault ids differ between replay and production (`F-000001` against `F-GZ-000001`), so an
action naming a fault by id carries `fault_ref`: "the k-th fault opened so far", by what the
fault is (the same in every mode); `fed_lines` gives each mode its own id for it. Refusals are
compared with their fault ids replaced by what the faults are (`canonical_reasons`).
"""

from __future__ import annotations

import io
import random
import re
from collections import Counter

import orjson
from hypothesis import strategies as st
from scenario import RULEBOOK, Inv, action, alarm, complaint, t

from services.commands.replay import Replay
from shared.clock import parse_time

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
NH_ACCESS = ["NH-GZ-1-CPE", "NH-FS-1-CPE", "NH-DG-1-CPE"]      # the customer in three shards, more often
CITIES = ["GZ", "SZ", "FS", "DG", "HZ", "XX"]
SERVICES = ["internet", "voice", "data"]
QUEUES = ["prov.monitoring", "city.FS.monitoring", "city.GZ.monitoring", "prov.specialist.transmission"]
EXTRA = {"confirm": [{"impact": "full_block"}, {"impact": "no_impact"}],
         "attribution": [{"attribution": "not_ours"}, {"attribution": "ours"}],
         "ack": [{"queue": q} for q in QUEUES],
         "resolve": [{}],
         "escalate": [{"reason": r} for r in ("ES-4", "ES-5", "ES-6", "ES-7")]}


def make_select(pick) -> dict:
    form = pick(["fault", "fault", "circuit", "customer", "customer", "customer_city", "city"])
    if form == "fault":
        return {"fault_ref": pick(range(13))}
    if form == "circuit":
        return {"circuit_id": pick(CIRCUITS)}
    if form == "city":
        return {"city": pick(CITIES), "service_type": pick(SERVICES)}
    sel = {"customer_id": pick(["P-NH", "P-NH", *CUSTOMERS]), "service_type": pick(["internet", *SERVICES])}
    if form == "customer_city":
        sel["city"] = pick(CITIES)
    return sel


def make_events(pick, start: float = 0.0, ids: str = "E") -> tuple[list[dict], str]:
    """Alarms, complaints and operator actions of every kind and select form, interleaved,
    from `start` minutes after the scenario's base; `pick(options)` chooses each (Hypothesis'
    draw, or a seeded random's choice); alarm ids `ids`0, `ids`1… (a raise and its clear
    share one; no id is used on two resources: README, known differences). The events and
    the time the clock ends at."""
    events: list[dict] = []
    minute = start
    active: list[tuple[str, str, str]] = []
    for n in range(pick(range(1, 46))):
        minute += pick([0, 0, 0.5, 1, 5, 14, 31])
        what = pick(["raise", "raise", "clear", "complaint", "complaint", "action", "action", "action"])
        if what == "raise":
            rid, cause = pick([*NH_ACCESS, *RESOURCES]), pick(["LOS", "LINK_DOWN", "PACKET_LOSS", "FAN"])
            aid = f"{ids}{n}"
            events.append(alarm(minute, rid, cause, event_min=minute - pick([0, 0, 1, 45]), alarm_id=aid))
            active.append((rid, cause, aid))
        elif what == "clear" and active:
            rid, cause, aid = active.pop(pick(range(len(active))))
            events.append(alarm(minute, rid, cause, "cleared", alarm_id=aid))
        elif what == "complaint":
            events.append(complaint(minute, pick(CUSTOMERS), pick(CITIES), pick(SERVICES),
                                    channel=pick(["10086-8", "400", "direct"]),
                                    scope=pick(["all_users", "partial"]), cid=f"C{pick(range(n + 1))}"))
        else:
            kind = pick(sorted(EXTRA))
            events.append(action(minute, kind, make_select(pick), **pick(EXTRA[kind])))
    return events, t(minute + pick([1, 600]))


@st.composite
def event_files(draw):
    return make_events(lambda options: draw(st.sampled_from(options)))


def seeded_files(seeds: list[int]) -> tuple[list[dict], str]:
    """Files of make_events from seeded randoms, one after the other (an hour apart), as one:
    for a test that can start its processes only once. Their complaint ids overlap (a
    complaint id is had once, whatever its city), their alarm ids do not."""
    events: list[dict] = []
    until = t(0)
    for seed in seeds:
        rng = random.Random(seed)
        start = (parse_time(until) - parse_time(t(0))) / 60 + 60
        more, until = make_events(lambda options, rng=rng: rng.choice(list(options)), start, f"S{seed}-")
        events += more
    return events, until


def issue_13_cases() -> list[dict]:
    """The cases the issue names: a customer select on a complaint fault of a customer without a
    circuit of that service; on a customer whose circuits of the service are in several shards
    (one match, then two: refused naming both); a complaint joining a fault of another city's
    shard (SV-5)."""
    return [complaint(0, "P-SZ", "FS", "voice", cid="K1"),
            action(1, "confirm", {"customer_id": "P-SZ", "service_type": "voice"}, impact="no_impact"),
            alarm(2, "NH-DG-1-CPE", alarm_id="X1", event_min=-3),
            action(3, "confirm", {"customer_id": "P-NH", "service_type": "internet"}, impact="no_impact"),
            alarm(4, "NH-GZ-1-CPE", alarm_id="X2"),
            complaint(5, "P-NH", "GZ", "internet", cid="K2"),
            action(6, "ack", {"customer_id": "P-NH", "service_type": "internet"}, queue="prov.monitoring"),
            action(7, "resolve", {"customer_id": "P-SZ", "service_type": "voice"}),
            action(8, "resolve", {"customer_id": "P-SZ", "service_type": "voice"})]


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
