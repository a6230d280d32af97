"""Garbage on every topic the pipeline consumes never stops it (issue 7): `faultline ingest`,
`correlate` and `dispatch` as OS processes on Tansu and PostgreSQL are fed random bytes,
non-JSON, JSON of every type, wrong-typed fields, huge numbers, deep nesting and values
the database cannot hold; then one good alarm. Each garbage message is on
faultline.deadletter with a reason and its coordinates, the good alarm's decisions reach
faultline.decisions, and every process is still up with /healthz 200."""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from pathlib import Path

import httpx
import orjson

from shared.topics import ACTIONS, ALARMS, CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS, raw_alarms_topic
from shared.transport.kafka import Consumer, KafkaConfig, Producer, ensure_topics

from .pipeline_support import Proc, stage_env, wait_http

ROOT = Path(__file__).resolve().parents[2]
RAW_NORMALIZED, RAW_TMF = raw_alarms_topic("normalized"), raw_alarms_topic("tmf642")
ALARM = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
         "probable_cause": "LOS", "severity": "critical", "state": "raised",
         "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}
TMF = {"id": "T-1", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "probableCause": "LOS",
       "perceivedSeverity": "critical", "state": "raised", "eventTime": "2026-11-25T10:00:00+08:00",
       "sourceSystemId": "gd-otn-nms-1"}
NOW = time.time()
SOURCE = re.compile(r"(.+):(\d+):(\d+)@\d+")


def _json_of_every_type(rng: random.Random) -> list[bytes]:
    deep = b"[" * 600 + b"]" * 600                      # orjson reads 1,024 levels, writes 254
    return [b"null", b"true", b"0", b"-1.5e308", b"123456789012345678901234567890", b'""', b'"x"',
            b"[]", b"{}", b"[{}]", deep, b'{"a": ' + deep + b"}",
            os.urandom(rng.randrange(1, 200)), b"{not json", b"\xff\xfe\x00", b"",
            b"x" * 300_000]                              # big, and kept only in part


def _wrong_types(obj: dict, fields: list[str], null: bool = True) -> list[bytes]:
    """`obj` with each field of the wrong JSON type (null only where the field is required)."""
    wrongs = [7, 1e300, True, [], ["critical"], ["raised"], {}, {"raised": 1}] + [None] * null
    return [orjson.dumps({**obj, field: wrong}) for field in fields for wrong in wrongs]


def garbage() -> dict[str, list[bytes]]:
    rng = random.Random(7)
    common = _json_of_every_type(rng)
    alarms = [*common, *_wrong_types(ALARM, ["source", "alarm_id", "resource_id", "severity", "state",
                                             "event_time"]),
              orjson.dumps({**ALARM, "alarm_id": "a\u0000b"}),            # PostgreSQL text holds no NUL
              orjson.dumps({**ALARM, "alarm_id": "n" * 300}),             # longer than its column
              orjson.dumps({**ALARM, "event_time": "0001-01-01T00:00:00+08:00"}),
              orjson.dumps({**ALARM, "event_time": "9999-12-31T23:59:59+08:00"})]
    actions = [*common, b'{"kind": "tick", "at": [1]}', b'{"kind": "tick", "at": "soon"}',
               b'{"kind": "resolve"}', b'{"kind": "confirm", "select": "all"}',
               b'{"kind": "complaint", "complaint": 5}', b'{"kind": "escalate", "select": {"fault_id": 1}}',
               b'{"kind": ["confirm"]}']
    inputs = [*common, b'{"at": "x", "source": "s-1", "input": {"kind": "alarm"}}', b'{"tick": []}',
              b'{"tick": 1e300}', b'{"tick": "later"}', b'{"source": "s-2", "input": {}}',
              b'{"at": %d, "source": "s-3"}' % NOW, b'{"at": %d, "source": ["k"], "input": {}}' % NOW,
              b'{"at": %d, "source": "s-4", "input": [1]}' % NOW,
              b'{"at": 1e300, "source": "s-5", "input": {"kind": "alarm"}}']
    faults = [*common, b'{"tick": null}', b'{"tick": 1e308}', b'{"id": "GZ:1:0"}',
              b'{"id": "GZ:1:1", "notice": {}, "key": [1, 2, 3], "now": %d}' % NOW,
              b'{"id": "GZ:1:2", "notice": {"kind": "opened"}, "key": "k", "now": "later"}',
              b'{"id": 5, "notice": null, "key": null, "now": null}']
    # (TMF642's state and perceivedSeverity may be absent: null is read as absent there)
    tmf = [*common, *_wrong_types(TMF, ["state", "perceivedSeverity"], null=False),
           *_wrong_types(TMF, ["alarmedObject", "eventTime", "id"]),
           orjson.dumps({**TMF, "alarmedObject": {"id": ["GZ"]}})]
    normalized = [*common, *_wrong_types(ALARM, ["severity", "state", "event_time", "resource_id"])]
    return {ALARMS: alarms, ACTIONS: actions, CORRELATOR_INPUTS: inputs, FAULTS: faults,
            RAW_TMF: tmf, RAW_NORMALIZED: normalized}


async def read_until(bootstrap: str, topics: list[str], done, timeout: float) -> list:
    consumer = Consumer(KafkaConfig(bootstrap), topics, f"test-{time.time_ns()}")
    await consumer.start()
    got: list = []
    try:
        deadline = time.monotonic() + timeout
        while not done(got) and time.monotonic() < deadline:
            got.extend(await consumer.fetch(timeout_ms=500, max_records=5000))
    finally:
        await consumer.stop()
    return got


async def test_garbage_on_every_topic_is_dead_lettered_and_the_pipeline_goes_on(broker, pg_url, tmp_path):
    env = stage_env(broker.bootstrap, pg_url, ROOT / "samples" / "inventory.json")
    env["FAULTLINE_ARRIVAL_HOLD_MS"] = "200"
    kafka = KafkaConfig(broker.bootstrap, partitions=4)
    bad = garbage()
    await ensure_topics(kafka, {t: 4 for t in [*bad, DECISIONS, DEADLETTER]})
    procs = [Proc(stage, env, tmp_path).start() for stage in ("ingest", "correlate", "dispatch")]
    try:
        try:
            await asyncio.gather(*(wait_http(p.port) for p in procs))
        except TimeoutError:
            raise AssertionError("\n\n".join(f"{p.stage}:\n{p.tail()}" for p in procs)) from None
        producer = Producer(kafka)
        await producer.start()
        sent: dict[tuple[str, int, int], bytes] = {}
        for topic, values in bad.items():
            # Keyed by a city where a key routes (a shard's topics), else unkeyed.
            key = "GZ" if topic in (CORRELATOR_INPUTS, FAULTS) else None
            where = await producer.send_many([(topic, v, key, None, int(NOW * 1000)) for v in values])
            sent.update({(topic, p, o): v for (p, o), v in zip(where, values, strict=True)})
        good_ms = int(time.time() * 1000) + 1000                 # after every garbage message
        await producer.send(RAW_NORMALIZED, orjson.dumps({**ALARM, "alarm_id": "good-1"}),
                            timestamp_ms=good_ms)
        await producer.stop()

        def letters_of(msgs) -> dict[tuple[str, int, int], dict]:
            """Letters by the coordinates of the message they name: their own, and for a
            shard's refusal of a routed message, the router's source key (topic:p:o@ms)."""
            out = {}
            for m in msgs:
                if m.topic == DEADLETTER:
                    letter = orjson.loads(m.value)
                    out[(letter.get("topic"), letter.get("partition"), letter.get("offset"))] = letter
                    source = SOURCE.fullmatch(str(letter.get("source")))
                    if source:
                        out[(source[1], int(source[2]), int(source[3]))] = letter
            return out

        def done(msgs) -> bool:
            decided = {orjson.loads(m.value)["type"] for m in msgs if m.topic == DECISIONS}
            return {"fault.opened", "work_order.created"} <= decided and set(sent) <= set(letters_of(msgs))

        msgs = await read_until(broker.bootstrap, [DECISIONS, DEADLETTER], done, timeout=40)
        letters = letters_of(msgs)
        missing = [(coords, sent[coords][:80]) for coords in sent if coords not in letters]
        assert not missing, ("\n\n".join(f"{p.stage}:\n{p.tail()}" for p in procs), missing[:10])
        assert all(letters[c]["reason"] for c in sent)
        decisions = [orjson.loads(m.value) for m in msgs if m.topic == DECISIONS]
        opened = [d for d in decisions if d["type"] == "fault.opened"]
        assert opened and {d["root_resource"] for d in opened} == {ALARM["resource_id"]}
        assert any(d["type"] == "work_order.created" for d in decisions)       # dispatch went on too
        async with httpx.AsyncClient() as http:
            for p in procs:
                assert p.proc.poll() is None, f"{p.stage} exited\n{p.tail()}"
                health = await http.get(f"http://127.0.0.1:{p.port}/healthz")
                assert health.status_code == 200, (p.stage, health.text, p.tail())
    finally:
        for p in procs:
            assert p.terminate() == 0, p.tail()


async def test_faultline_run_on_postgresql_refuses_what_the_database_cannot_hold(pg_url, monkeypatch):
    """`faultline run`'s runtime on PostgreSQL: an alarm whose id the database cannot hold (a
    NUL, longer than its column) is refused by the decoder at intake, naming the field; and
    should one get past the decoder (here: its length check widened), the database's refusal
    in the correlate shard is the safety net: refused with the database's reason (422 to a
    client that waits for the outcome, kept, dead-lettered), the shard rebuilt from its log.
    Either way the next alarm is handled."""
    from service.support import T0, FakeClock, LiveSettings, live_service
    from sqlalchemy import select

    import alarm_ingest.normalized
    from shared.db.models import rejected
    from shared.inventory import load_inventory
    from shared.rulebook import load_rulebook
    from shared.wire import INTERNAL

    settings = LiveSettings(load_inventory(ROOT / "samples" / "inventory.json"), load_rulebook(), pg_url)
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        letters = svc.runtime.transport.consumer([DEADLETTER], "test-letters")
        await letters.start()
        for alarm_id, reason in (("a\u0000b", "alarm.alarm_id: holds a NUL"),
                                 ("n" * 300, "alarm.alarm_id: longer than 255 characters")):
            resp = await svc.client.post("/alarms", json={**ALARM, "alarm_id": alarm_id})
            assert resp.status_code == 422 and resp.json()["reasons"][0]["reason"].startswith(reason)
        monkeypatch.setattr(alarm_ingest.normalized, "MAX_NAME", 10_000)
        resp = await svc.client.post("/alarms", params={"wait_s": 20}, json={**ALARM, "alarm_id": "n" * 300})
        assert resp.status_code == 422, resp.text
        assert resp.json()["reasons"][0]["reason"].startswith(INTERNAL)
        health = await svc.client.get("/healthz")
        assert health.status_code == 200, health.text
        assert (await svc.client.get("/faults")).json() == []      # rolled back by the rebuild
        resp = await svc.client.post("/alarms", params={"wait_s": 20}, json=ALARM)
        assert resp.status_code == 202 and resp.json()["accepted"] == 1
        faults = (await svc.client.get("/faults")).json()
        await svc.settle()
        async with svc.runtime.db.connect() as conn:
            refusals = (await conn.execute(select(rejected.c.stage, rejected.c.reason))).all()
        got = await letters.fetch(timeout_ms=500)
        await letters.stop()
    assert faults and {f["root_resource"] for f in faults} == {ALARM["resource_id"]}
    assert len(refusals) == 3 and len(got) == 3, (refusals, got)
    assert sorted(stage for stage, _r in refusals) == ["api", "api", "correlate"]
