"""The split pipeline (city shards of correlator and dispatcher, notices through JSON) makes
the same decisions as the one-process Pipeline of `faultline replay`, ids aside (issue 3)."""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scenario import RULEBOOK, action, alarm, complaint, t

from services.drivers.pipeline import Pipeline
from services.drivers.split import SplitPipeline
from shared.inventory import load_inventory
from tools.kafka_events import canonical, replay_records

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
INVENTORY = load_inventory(SAMPLES / "inventory.json")


def replay_with(pipeline_cls, lines: list[bytes], until: str | None) -> list[dict]:
    return replay_records(INVENTORY, RULEBOOK, lines, until, pipeline=pipeline_cls)


def assert_equivalent(lines: list[bytes], until: str | None = None) -> None:
    one = replay_with(Pipeline, lines, until)
    split = replay_with(SplitPipeline, lines, until)
    a, b = canonical(one), canonical(split)
    assert a == b, {"only in replay": list((a - b).elements())[:5],
                    "only in split": list((b - a).elements())[:5]}


def test_sample_walkthrough_is_equivalent():
    lines = (SAMPLES / "replay_events.jsonl").read_bytes().splitlines()
    assert_equivalent(lines, "2026-11-25T19:00:00+08:00")


CIRCUITS = sorted(INVENTORY.circuits)
RESOURCES = sorted(INVENTORY.resources) + ["GZ-PE-99:GE9/9/9"]
CUSTOMERS = sorted(INVENTORY.customers)


@st.composite
def days(draw):
    """Alarms on the sample's resources, complaints and operator actions, in arrival order."""
    events = []
    minute = 0.0
    active: list[tuple[str, str, str]] = []
    for n in range(draw(st.integers(min_value=1, max_value=40))):
        minute += draw(st.sampled_from([0, 0.5, 1, 5, 14, 31]))
        what = draw(st.sampled_from(["raise", "raise", "clear", "complaint", "action"]))
        if what == "raise":
            rid = draw(st.sampled_from(RESOURCES))
            cause = draw(st.sampled_from(["LOS", "LINK_DOWN", "PACKET_LOSS", "GATEWAY_CONN_LOST", "FAN"]))
            lag = draw(st.sampled_from([0, 0, 1, 45]))
            events.append(alarm(minute, rid, cause, event_min=minute - lag, alarm_id=f"E{n}"))
            active.append((rid, cause, f"E{n}"))
        elif what == "clear" and active:
            rid, cause, aid = active.pop(draw(st.integers(min_value=0, max_value=len(active) - 1)))
            events.append(alarm(minute, rid, cause, "cleared", alarm_id=aid))
        elif what == "complaint":
            cust = draw(st.sampled_from(CUSTOMERS))
            city = draw(st.sampled_from(["GZ", "FS", "SZ"]))
            events.append(complaint(minute, cust, city, draw(st.sampled_from(["internet", "voice", "sms"])),
                                    channel=draw(st.sampled_from(["10086-8", "400", "direct"])),
                                    scope=draw(st.sampled_from(["all_users", "partial"])), cid=f"C{n}"))
        else:
            kind = draw(st.sampled_from(["confirm", "resolve", "escalate", "ack"]))
            sel = {"circuit_id": draw(st.sampled_from(CIRCUITS))}
            extra = {"confirm": {"impact": "full_block"}, "resolve": {}, "escalate": {"reason": "ES-6"},
                     "ack": {"queue": "prov.monitoring"}}[kind]
            events.append(action(minute, kind, sel, **extra))
    return [orjson.dumps(e) for e in events], t(minute + 600)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days())
def test_random_days_on_the_sample_inventory_are_equivalent(day):
    lines, until = day
    assert_equivalent(lines, until)
