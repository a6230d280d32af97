"""The router and ingest never stop on one message (issue 7): whatever a message holds, it
becomes routed values or exactly one dead letter naming its topic, partition and offset
with a reason — an unexpected error included — and every letter can be sent."""

from __future__ import annotations

import os
import random
from pathlib import Path

import orjson
import pytest

import services.drivers.city_router as router
import services.runtime.ingest_loop as ingest
from services.drivers.city_router import Asking, dead, route_or_dead
from services.drivers.dead_letters import MAX_KEPT, MAX_VALUE
from services.runtime.ingest_loop import normalize_or_dead
from shared.inventory import load_inventory
from shared.topics import ACTIONS, ALARMS, CORRELATOR_INPUTS, DEADLETTER, raw_alarms_topic
from shared.transport.port import Msg
from shared.wire import INTERNAL

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = load_inventory(ROOT / "samples" / "inventory.json")
ALARM = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
         "probable_cause": "LOS", "severity": "critical", "state": "raised",
         "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}
TIME_MS = 1_795_572_005_000


def _msg(topic: str, value: bytes, offset: int = 7, key: str | None = None) -> Msg:
    return Msg(topic, 1, offset, key, value, TIME_MS)


def _garbage(seed: int) -> list[bytes]:
    """Random bytes, non-JSON, JSON of every type, wrong-typed fields, deep nesting."""
    rng = random.Random(seed)
    values: list[object] = [None, True, 0, -1, 1e308, 123456789012345678901234567890, "", "x", [], {},
                            [ALARM], {"kind": None}, {"kind": "tick", "at": [1]}, {"kind": "resolve"},
                            {"kind": "confirm", "select": "all"}, {"kind": "complaint", "complaint": 5}]
    for field in ALARM:
        for wrong in (None, 1, 1.5, True, [], ["critical"], {}, {"a": 1}, "", "z" * 300):
            values.append({**ALARM, field: wrong})
    out = [orjson.dumps(v) if not isinstance(v, int) or abs(v) < 2**63 else str(v).encode() for v in values]
    out += [os.urandom(rng.randrange(1, 64)), b"{not json", b"\xff\xfe", b"[" * 2000, b"[" * 600 + b"]" * 600,
            b'{"kind": "confirm", "x": ' + b"[" * 300 + b"]" * 300 + b"}"]
    return out


def _letters(outs):
    return [orjson.loads(v) for t, v, _k in outs if t == DEADLETTER]


@pytest.mark.parametrize("topic", [ALARMS, ACTIONS])
def test_any_message_is_routed_or_dead_lettered_once(topic):
    for i, value in enumerate(_garbage(1)):
        outs = route_or_dead(INVENTORY, _msg(topic, value, offset=i))
        letters = _letters(outs)
        assert outs and {t for t, _v, _k in outs} <= {CORRELATOR_INPUTS, DEADLETTER}, value
        assert all(len(v) <= MAX_VALUE for _t, v, _k in outs)
        if letters:
            assert len(outs) == 1
            assert letters[0]["reason"] and (letters[0]["topic"], letters[0]["offset"]) == (topic, i)


def test_a_kind_nested_1000_deep_is_refused_by_its_own_reason_not_an_internal_error():
    """repr() of such a kind raises RecursionError: the reason shows it without recursing."""
    value = b'{"kind": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    (letter,) = _letters(route_or_dead(INVENTORY, _msg(ACTIONS, value)))
    assert letter["reason"].startswith("kind: ") and INTERNAL not in letter["reason"]


def test_an_unexpected_error_while_routing_is_dead_lettered(monkeypatch):
    def broken(inventory, msg, tie=0):
        raise KeyError("nobody thought of this")

    monkeypatch.setattr(router, "route", broken)
    outs = route_or_dead(INVENTORY, _msg(ALARMS, orjson.dumps(ALARM)))
    (letter,) = _letters(outs)
    assert letter["reason"] == f"{INTERNAL}: KeyError: 'nobody thought of this'"
    assert (letter["topic"], letter["partition"], letter["offset"]) == (ALARMS, 1, 7)
    assert orjson.loads(letter["value"]) == ALARM


def test_a_dead_letter_is_always_sendable():
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    raw = b"[" * 300 + b"1" + b"]" * 300
    _t, value, _k = dead(_msg(ALARMS, raw), "why", deep)            # too deep to write: kept as text
    assert orjson.loads(value)["value"] == raw.decode()
    huge = b"x" * (2 * MAX_KEPT)
    _t, value, key = dead(_msg(ALARMS, huge, key="k" * 5000), "why")          # no value: the raw text
    letter = orjson.loads(value)
    assert len(value) < MAX_VALUE and letter["truncated"] == len(huge) and key is None


def test_a_routed_value_too_large_to_send_is_dead_lettered():
    big = orjson.dumps({**ALARM, "text": "t" * MAX_VALUE})
    (letter,) = _letters(route_or_dead(INVENTORY, _msg(ALARMS, big)))
    assert "too large" in letter["reason"]


@pytest.mark.parametrize("fmt", ["normalized", "tmf642", "syslog"])
def test_any_raw_message_is_normalized_or_dead_lettered(fmt):
    topic = raw_alarms_topic(fmt)
    tmf = {"id": "T-1", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "probableCause": "LOS",
           "perceivedSeverity": "critical", "state": ["raised"], "eventTime": "2026-11-25T10:00:00+08:00"}
    for i, value in enumerate([*_garbage(2), orjson.dumps(tmf)]):
        out_topic, out, _key, _ts = normalize_or_dead(_msg(topic, value, offset=i))
        if out_topic == DEADLETTER:
            letter = orjson.loads(out)
            assert letter["reason"] and (letter["topic"], letter["offset"]) == (topic, i)
        else:
            assert out_topic == ALARMS and len(out) <= MAX_VALUE


def test_an_unexpected_error_while_normalizing_is_dead_lettered(monkeypatch):
    def broken(fmt, payload, where, **_feed):
        raise ValueError("year 0 is out of range")

    monkeypatch.setattr(ingest, "normalize", broken)
    topic, value, _key, _ts = normalize_or_dead(_msg(raw_alarms_topic("normalized"), orjson.dumps(ALARM)))
    letter = orjson.loads(value)
    assert topic == DEADLETTER and letter["reason"] == f"{INTERNAL}: ValueError: year 0 is out of range"


def test_a_dead_letter_of_escaped_bytes_still_fits_a_message():
    """Control characters triple to sextuple once escaped in JSON: the kept text is cut
    until the letter fits, whatever the message held."""
    for raw in (b"\x01" * 900_000, os.urandom(900_000)):
        _t, value, _k = dead(_msg(ALARMS, raw), "why")
        assert len(value) < MAX_VALUE and orjson.loads(value)["truncated"] == len(raw)


def test_complaints_and_actions_naming_unknown_cities_make_no_new_shards():
    """Only the inventory's cities and UNMAPPED are keys: a hostile feed of complaints from
    made-up cities cannot grow the correlate stage's shards (each one a correlator)."""
    from services.drivers.sharding import all_shards

    known = set(all_shards(INVENTORY))
    keys = set()
    for i in range(200):
        complaint = {"kind": "complaint", "complaint": {
            "complaint_id": f"C{i}", "channel": "400", "customer_id": "C-NH", "city": f"X{i}",
            "service_type": "internet", "scope": "all_users"}}
        action = {"kind": "resolve", "select": {"city": f"Y{i}", "service_type": "internet"}}
        by_id = {"kind": "ack", "queue": "q", "select": {"fault_id": f"F-Z{i}-000001"}}
        for n, value in enumerate((complaint, action, by_id)):
            routed = route_or_dead(INVENTORY, _msg(ACTIONS, orjson.dumps(value), 3 * i + n))
            if isinstance(routed, Asking):       # a complaint is asked of every shard, then settled
                keys |= {k for _t, _v, k in routed.asks()}
                for shard in routed.shards:
                    routed.take(shard, {"seen": False, "join": None})
                routed = routed.settled(INVENTORY)
                assert [k for _t, _v, k in routed] == ["-"]          # home: the unknown city's
            keys |= {k for t, _v, k in routed if t == CORRELATOR_INPUTS}
    assert keys == known
