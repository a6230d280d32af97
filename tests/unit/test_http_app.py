"""services/http/app.py, the one HTTP app of both modes, over a real SQLite database built by
the migrations and a fake producer (no broker): the path set, the reads a page at a time
(read model filled by projecting `faultline replay`'s records of samples/), intake's
refusals and ids, and the outcome of an input read from the stages' bookkeeping (input_log,
outbox, rejected), waited for with `wait_s`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
import pytest
from api_routes import ROUTES
from prometheus_client import CollectorRegistry
from scenario import run
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine
from tokens import bearer

from services.http.app import build_app
from services.http.face import TMF621, TMF642, Face
from services.http.guard import HttpLimits
from services.http.reads import input_outcome
from shared.db.migrate import upgrade_async
from shared.db.models import audit, input_log, outbox, rejected
from shared.db.projection import project_batch
from shared.inventory import parse_inventory
from shared.topics import ACTIONS, ALARMS, DEADLETTER, DECISIONS, FAULTS, raw_alarms_topic
from shared.transport.port import Msg, partition_for

ROOT = Path(__file__).resolve().parents[2]
INVENTORY_DOC = orjson.loads((ROOT / "samples" / "inventory.json").read_bytes())
EVENTS = [line for line in (ROOT / "samples" / "replay_events.jsonl").read_text().splitlines()
          if line.strip()]
UNTIL = "2026-11-25T19:00:00+08:00"
NOW_MS = 1_764_036_000_000          # the face's clock: 2025-11-25T10:00:00+08:00, fixed
PARTITIONS = 3
ALARM = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
         "probable_cause": "LOS", "severity": "critical", "state": "raised",
         "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}
RESOLVE = {"kind": "resolve", "select": {"circuit_id": "GZ-INT-0001"}}


class FakeProducer:
    """The transport port's send_many, in memory: keyed records on the key's partition, others
    on partition 0; offsets increase per topic partition. Keeps what was sent as Msgs."""

    def __init__(self) -> None:
        self.sent: list[Msg] = []
        self.next: dict[tuple[str, int], int] = {}

    async def send_many(self, records) -> list[tuple[int, int]]:
        out = []
        for topic, value, key, partition, timestamp_ms in records:
            assert isinstance(value, bytes) and timestamp_ms is not None
            p = partition if partition is not None else partition_for(key, PARTITIONS) if key else 0
            offset = self.next.get((topic, p), 0)
            self.next[(topic, p)] = offset + 1
            self.sent.append(Msg(topic, p, offset, key, value, timestamp_ms))
            out.append((p, offset))
        return out

    def on(self, topic: str) -> list:
        return [orjson.loads(m.value) for m in self.sent if m.topic == topic]


class Service:
    def __init__(self, engine, producer: FakeProducer, client: httpx.AsyncClient, state: dict) -> None:
        self.engine, self.producer, self.client, self.state = engine, producer, client, state


@pytest.fixture
async def db(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'faultline.sqlite3'}"
    await upgrade_async(url)
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


def _app(engine, producer, state: dict, inventory=None, limits: HttpLimits | None = None):
    async def ready() -> list[str]:
        return list(state["problems"])
    face = Face(producer=producer, db=engine, registry=CollectorRegistry(),
                health=lambda: state["down"], ready=ready, warnings=lambda: list(state["warnings"]),
                limits=limits or HttpLimits(), now_ms=lambda: NOW_MS, inventory=inventory)
    return build_app(face)


@pytest.fixture
async def svc(db):
    producer, state = FakeProducer(), {"down": None, "problems": [], "warnings": []}
    app = _app(db, producer, state, parse_inventory(INVENTORY_DOC))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                 headers=await bearer(db)) as client:
        yield Service(db, producer, client, state)


@pytest.fixture(scope="module")
def replayed() -> list[dict]:
    result = run(INVENTORY_DOC, EVENTS, UNTIL)
    assert result.status == 3                       # line 12 is refused (CL-4), as the README says
    return result.records


async def _project(engine, records: list[dict]) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(project_batch, [], [("GZ", r) for r in records], stage="correlate")


# ---------------------------------------------------------------------- the path set

def test_the_paths_are_the_union_of_both_apps(db):
    spec = _app(db, FakeProducer(), {}).openapi()
    routes = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert routes == ROUTES
    intake = spec["paths"]["/actions"]["post"]
    assert {p["name"] for p in intake["parameters"]} == {"wait_s"}
    fields = spec["components"]["schemas"]["IntakeAnswer"]["properties"]
    assert {"accepted", "rejected", "reasons", "records", "refused", "input_ids", "pending"} <= fields.keys()


# ---------------------------------------------------------------------- reads

async def test_faults_filters_paging_and_one(svc, replayed):
    await _project(svc.engine, replayed)
    opened = [r for r in replayed if r["type"] == "fault.opened"]
    everything = (await svc.client.get("/faults")).json()
    assert sorted(f["fault_id"] for f in everything) == sorted(r["fault_id"] for r in opened)
    assert [f["opened_at"] for f in everything] == sorted(f["opened_at"] for f in everything)
    gz = (await svc.client.get("/faults", params={"city": "GZ"})).json()
    assert gz and {f["city"] for f in gz} == {"GZ"}
    assert len(gz) == sum(r["city"] == "GZ" for r in opened)
    serious = (await svc.client.get("/faults", params={"severity": "serious"})).json()
    assert serious and {f["severity"] for f in serious} == {"serious"}
    open_ = (await svc.client.get("/faults", params={"open": "true"})).json()
    ended = (await svc.client.get("/faults", params={"open": "false"})).json()
    assert {f["ended_at"] for f in open_} == {None} and None not in {f["ended_at"] for f in ended}
    assert len(open_) + len(ended) == len(everything)

    first = await svc.client.get("/faults", params={"limit": 2})
    assert first.headers["x-result-count"] == "2" and first.headers["x-next-offset"] == "2"
    rest = await svc.client.get("/faults", params={"offset": 2, "limit": 5000})
    assert "x-next-offset" not in rest.headers
    assert first.json() + rest.json() == everything

    nh = next(f for f in everything if f["circuit_id"] == "GZ-INT-0001")
    assert nh["customer_name"] == "南方航空集团公司"
    made = sorted({r["work_order_id"] for r in replayed if r["type"] == "work_order.created"
                   and nh["fault_id"] in r["fault_ids"]})
    assert nh["work_orders"] == made and made
    assert (nh["attribution"], nh["complaints"], nh["customer_reported"]) == ("ours", [], False)
    one = await svc.client.get(f"/faults/{nh['fault_id']}")
    assert one.status_code == 200 and one.json() == nh
    missing = await svc.client.get("/faults/F-GZ-999999")
    assert missing.status_code == 404 and "F-GZ-999999" in missing.json()["detail"]


async def test_work_orders_by_queue_and_status_and_as_trouble_tickets(svc, replayed):
    await _project(svc.engine, replayed)
    created = [r for r in replayed if r["type"] == "work_order.created"]
    orders = (await svc.client.get("/workorders")).json()
    assert [o["work_order_id"] for o in orders] == [r["work_order_id"] for r in created]
    queue = (await svc.client.get("/workorders", params={"queue": "prov.specialist.transmission"})).json()
    assert queue and {o["queue"] for o in queue} == {"prov.specialist.transmission"}
    assert queue[0]["title"].startswith("【集团客户") and isinstance(queue[0]["fault_ids"], list)
    resolved = (await svc.client.get("/workorders", params={"status": "resolved"})).json()
    assert resolved and {o["status"] for o in resolved} == {"resolved"}
    one = await svc.client.get(f"/workorders/{queue[0]['work_order_id']}")
    assert one.json() == queue[0]
    assert (await svc.client.get("/workorders/W-999999")).status_code == 404
    tickets = await svc.client.get(TMF621, params={"status": "resolved", "limit": 1})
    assert tickets.headers["x-total-count"] == str(len(resolved)) and tickets.headers["x-next-offset"] == "1"
    ticket = tickets.json()[0]
    assert ticket["id"] == resolved[0]["work_order_id"] and ticket["status"] == "resolved"
    faults = [e["id"] for e in ticket["relatedEntity"] if e["role"] == "fault"]
    assert faults == resolved[0]["fault_ids"] and ticket["@type"] == "TroubleTicket"


async def test_decisions_are_the_audit_rows_a_page_at_a_time(svc, replayed):
    await _project(svc.engine, replayed)
    seen, after = [], 0
    while True:
        page = (await svc.client.get("/decisions", params={"after_seq": after, "limit": 7})).json()
        if not page["decisions"]:
            assert page["last_seq"] == after
            break
        assert len(page["decisions"]) <= 7 and page["last_seq"] == page["decisions"][-1]["seq"]
        seen.extend(page["decisions"])
        after = page["last_seq"]
    assert [d["record"] for d in seen] == replayed
    assert [d["seq"] for d in seen] == sorted({d["seq"] for d in seen})
    typed = (await svc.client.get("/decisions", params=[("type", "fault.serious"), ("type", "sms")])).json()
    wanted = [r for r in replayed if r["type"] in ("fault.serious", "sms")]
    assert [d["record"] for d in typed["decisions"]] == wanted
    assert (await svc.client.get("/decisions", params={"after_seq": -1})).status_code == 422


# ---------------------------------------------------------------------- intake

async def test_intake_publishes_with_the_faces_clock_and_answers_ids(svc):
    one = await svc.client.post("/alarms", json=ALARM)
    assert one.status_code == 202
    body = one.json()
    (msg,) = svc.producer.sent
    assert (msg.topic, msg.key, msg.timestamp_ms, orjson.loads(msg.value)) == (ALARMS, ALARM["resource_id"],
                                                                              NOW_MS, ALARM)
    assert body["input_ids"] == [msg.coordinates] and msg.coordinates.endswith(f"@{NOW_MS}")
    assert (body["accepted"], body["rejected"], body["pending"], body["records"]) == (1, 0, 1, None)

    action = await svc.client.post("/actions", json={**RESOLVE, "at": "2026-11-25T10:00:00+08:00"})
    complaint = {"complaint_id": "CSP-1", "channel": "400", "customer_id": "C-NH", "city": "GZ",
                 "service_type": "internet", "scope": "all_users", "text": "全部无法上网"}
    wrapped = await svc.client.post("/complaints", json={"kind": "complaint", "complaint": complaint})
    tmf_alarm = {"id": "T-1", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "probableCause": "LOS",
                 "perceivedSeverity": "critical", "state": "raised", "sourceSystemId": "nms",
                 "alarmRaisedTime": "2026-11-25T10:00:00+08:00",
                 "alarmReportingTime": "2026-11-25T10:00:01+08:00"}
    tmf = await svc.client.post(TMF642, json=tmf_alarm)
    assert [r.status_code for r in (action, wrapped, tmf)] == [202, 202, 201]
    assert svc.producer.on(ACTIONS) == [RESOLVE, {"kind": "complaint", "complaint": complaint}]
    assert svc.producer.sent[-2].key == "GZ"
    assert svc.producer.on(raw_alarms_topic("tmf642")) == [tmf_alarm]          # as it came, to ingest
    assert tmf.headers["x-input-ids"] == svc.producer.sent[-1].coordinates
    assert tmf.json()["id"] == "nms:T-1" and tmf.headers["location"].endswith("/alarm/nms%3AT-1")


@pytest.mark.parametrize("path, body, says", [
    ("/alarms", b"{not json", "not valid JSON"),
    ("/alarms", orjson.dumps({**ALARM, "severity": ["loud"]}), "alarm.severity"),
    ("/alarms", orjson.dumps([ALARM] * 1001), "at most 1000"),
    ("/actions", orjson.dumps({"kind": "reboot", "select": {}}), "kind"),
    ("/actions", b"null", "expected a JSON object"),
    ("/actions", orjson.dumps({"kind": "resolve", "select": {"fault_id": "F-XX-000001"}}),
     "fault F-XX-000001 is unknown"),      # as replay says: no shard holds such an id
    ("/complaints", orjson.dumps({"complaint_id": 7}), "complaint"),
])
async def test_an_unusable_body_is_422_with_the_reason_and_dead_lettered(svc, path, body, says):
    resp = await svc.client.post(path, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422
    answer = resp.json()
    assert says in answer["detail"] and answer["refused"] == [answer["detail"]]
    assert answer["reasons"] == [{"index": 0, "reason": answer["detail"]}]
    assert (answer["accepted"], answer["rejected"], answer["pending"]) == (0, 1, 0)
    assert answer["input_ids"] == [None]
    (letter,) = svc.producer.on(DEADLETTER)
    assert [m.topic for m in svc.producer.sent] == [DEADLETTER]
    assert letter["reason"] == answer["detail"] and letter["stage"] == "api" and letter["topic"] is None


async def test_an_alarm_list_answers_each_item(svc):
    resp = await svc.client.post("/alarms", json=[ALARM, {"alarm_id": "x"}, {**ALARM, "alarm_id": "2"}])
    assert resp.status_code == 202
    body = resp.json()
    assert (body["accepted"], body["rejected"], body["pending"]) == (2, 1, 2)
    assert body["reasons"][0]["index"] == 1 and "missing field" in body["reasons"][0]["reason"]
    alarms = [m for m in svc.producer.sent if m.topic == ALARMS]
    assert body["input_ids"] == [alarms[0].coordinates, None, alarms[1].coordinates]
    assert len(svc.producer.on(DEADLETTER)) == 1


async def test_a_value_too_large_for_a_message_is_413_and_nothing_is_sent(svc):
    resp = await svc.client.post(TMF642, json={"id": "T-1", "alarmedObject": {"id": "R"},
                                               "probableCause": "LOS",
                                               "eventTime": "2026-11-25T10:00:00+08:00",
                                               "alarmDetails": "d" * 950_000})
    assert resp.status_code == 413 and "fit a message" in resp.json()["detail"]
    assert svc.producer.sent == []


# ---------------------------------------------------------------------- outcomes

def _notice(notice_id: str) -> str:
    return orjson.dumps({"id": notice_id, "notice": {}, "now": 1.0}).decode()


async def _logged(engine, stage: str, shard: str, seq: int, source_key: str, refused: str | None = None,
                  **sent: list[str]) -> None:
    """What a city shard stores for an input it handled, in one transaction as the shard runner
    does: its log entry, its refusal if any, and per topic the messages it made (one outbox
    row each, a JSON list)."""
    async with engine.begin() as conn:
        await conn.execute(insert(input_log).values(stage=stage, shard=shard, seq=seq, kind="input",
                                                    clock=1.0, body="{}", source_key=source_key))
        if refused is not None:
            await conn.execute(insert(rejected).values(at="2026-11-25T10:25:00+08:00", stage=stage,
                                                       source_key=source_key, reason=refused))
        for topic, values in sent.items():
            await conn.execute(insert(outbox).values(stage=stage, shard=shard, seq=seq, topic=topic,
                                                     key=shard, value=orjson.dumps(values).decode()))


async def _refused(engine, stage: str, source_key: str, reason: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(rejected).values(at="2026-11-25T10:25:00+08:00", stage=stage,
                                                   source_key=source_key, reason=reason))


def _records(n: int) -> list[str]:
    return [orjson.dumps({"type": "sms", "n": i}).decode() for i in range(n)]


async def _outcome(engine, input_id: str, **kw) -> dict:
    async with engine.connect() as conn:
        return await input_outcome(conn, input_id, **kw)


async def test_an_input_is_pending_until_correlate_and_dispatch_have_handled_it(db):
    i = "faultline.actions:0:4@1764036000000"
    assert await _outcome(db, i) == {"input_id": i, "status": "pending", "reason": None, "records": None}
    notices = [_notice("GZ:7:0"), '{"tick": 1.0}', _notice("GZ:7:2")]       # a tick has no id
    await _logged(db, "correlate", "GZ", 7, i, **{FAULTS: notices, DECISIONS: _records(2)})
    assert (await _outcome(db, i))["status"] == "pending"                  # dispatch has not seen its notices
    await _logged(db, "dispatch", "GZ", 3, "GZ:7:0", **{DECISIONS: _records(3)})
    assert (await _outcome(db, i))["status"] == "pending"
    await _logged(db, "dispatch", "GZ", 4, "GZ:7:2")
    assert await _outcome(db, i) == {"input_id": i, "status": "accepted", "reason": None, "records": 5}
    assert (await _outcome(db, i, shards=["FS", "GZ", "-"]))["status"] == "accepted"
    assert (await _outcome(db, i, shards=["FS"]))["status"] == "pending"
    assert (await _outcome(db, i, expect=["GZ", "SZ"]))["status"] == "pending"   # a shard to come


async def test_an_input_without_notices_is_accepted_once_correlate_logged_it(db):
    i = "faultline.alarms:2:0@1764036000000"
    await _logged(db, "correlate", "GZ", 1, i)
    assert await _outcome(db, i) == {"input_id": i, "status": "accepted", "reason": None, "records": 0}


async def test_an_input_refused_by_correlate_or_by_dispatch_says_why(db):
    at_correlate = "faultline.actions:0:9@1764036000000"
    await _logged(db, "correlate", "GZ", 9, at_correlate)              # CL-4: logged, and refused
    await _refused(db, "correlate", at_correlate, "resolve GZ-INT-0001: the line is still down")
    assert await _outcome(db, at_correlate) == {"input_id": at_correlate, "status": "refused",
                                                "reason": "resolve GZ-INT-0001: the line is still down",
                                                "records": 0}
    at_dispatch = "faultline.actions:1:2@1764036000000"
    await _logged(db, "correlate", "FS", 2, at_dispatch,
                  **{FAULTS: [_notice("FS:2:0")], DECISIONS: _records(1)})
    await _refused(db, "dispatch", "FS:2:0", "ack F-FS-000001: queue x holds no open work order")
    got = await _outcome(db, at_dispatch)
    assert (got["status"], got["reason"], got["records"]) == (
        "refused", "ack F-FS-000001: queue x holds no open work order", 1)
    never_logged = "faultline.alarms:0:1@1764036000000"                # refused before the log
    await _refused(db, "correlate", never_logged, "internal error while handling this input: boom")
    assert (await _outcome(db, never_logged))["status"] == "refused"


async def test_get_input_answers_its_outcome_and_waits_while_pending(svc):
    i = "faultline.actions:0:0@1764036000000"
    now = await svc.client.get(f"/inputs/{i}")
    assert now.status_code == 200 and now.json()["status"] == "pending"
    started = time.monotonic()
    waited = await svc.client.get(f"/inputs/{i}", params={"wait_s": 0.3})
    assert waited.json()["status"] == "pending" and 0.3 <= time.monotonic() - started < 3

    async def later() -> None:
        await asyncio.sleep(0.2)
        await _logged(svc.engine, "correlate", "GZ", 1, i, **{DECISIONS: _records(2)})
    answer, _ = await asyncio.gather(svc.client.get(f"/inputs/{i}", params={"wait_s": 10}), later())
    assert answer.json() == {"input_id": i, "status": "accepted", "reason": None, "records": 2}
    assert (await svc.client.get("/inputs/not-an-id")).status_code == 404
    assert (await svc.client.get(f"/inputs/{i}", params={"wait_s": 31})).status_code == 422


async def _as_stages(svc, handle) -> None:
    """Wait for intake to publish, then play the stages: `handle(msg)` for each new message."""
    done = 0
    while done < 1:
        await asyncio.sleep(0.02)
        for msg in [m for m in svc.producer.sent if m.topic in (ALARMS, ACTIONS)][done:]:
            await handle(msg)
            done += 1


async def test_an_awaited_action_refused_by_the_rules_is_422_with_the_reason(svc):
    reason = "resolve GZ-INT-0001: the line is still down (CL-4)"

    async def correlate(msg: Msg) -> None:
        await _logged(svc.engine, "correlate", "GZ", 1, msg.coordinates, refused=reason)
    resp, _ = await asyncio.gather(svc.client.post("/actions", params={"wait_s": 10}, json=RESOLVE),
                                   _as_stages(svc, correlate))
    assert resp.status_code == 422
    body = resp.json()
    assert (body["detail"], body["reasons"], body["refused"]) == (reason, [{"index": 0, "reason": reason}],
                                                                  [reason])
    assert (body["accepted"], body["rejected"], body["pending"], body["records"]) == (0, 1, 0, 0)
    assert body["input_ids"] == [svc.producer.sent[0].coordinates]


async def test_an_awaited_action_taken_is_202_with_its_records(svc):
    async def stages(msg: Msg) -> None:
        await _logged(svc.engine, "correlate", "GZ", 1, msg.coordinates,
                      **{FAULTS: [_notice("GZ:1:0")], DECISIONS: _records(1)})
        await _logged(svc.engine, "dispatch", "GZ", 1, "GZ:1:0", **{DECISIONS: _records(2)})
    resp, _ = await asyncio.gather(svc.client.post("/actions", params={"wait_s": 10}, json=RESOLVE),
                                   _as_stages(svc, stages))
    assert resp.status_code == 202
    assert {k: resp.json()[k] for k in ("accepted", "rejected", "pending", "records")} == {
        "accepted": 1, "rejected": 0, "pending": 0, "records": 3}


async def test_waiting_that_runs_out_answers_202_pending(svc):
    started = time.monotonic()
    resp = await svc.client.post("/actions", params={"wait_s": 0.3}, json=RESOLVE)
    assert 0.3 <= time.monotonic() - started < 3
    assert resp.status_code == 202
    body = resp.json()
    assert (body["accepted"], body["rejected"], body["pending"], body["records"]) == (1, 0, 1, 0)
    assert body["input_ids"] == [svc.producer.sent[0].coordinates]


async def test_an_awaited_alarm_list_answers_each_outcome(svc):
    async def correlate(msg: Msg) -> None:
        if orjson.loads(msg.value)["alarm_id"] == "bad":
            await _refused(svc.engine, "correlate", msg.coordinates,
                           "internal error while handling this input")
        else:
            await _logged(svc.engine, "correlate", "GZ", msg.offset + 1, msg.coordinates)

    async def stages() -> None:
        seen: set[str] = set()
        while len(seen) < 2:
            await asyncio.sleep(0.02)
            for msg in [m for m in svc.producer.sent if m.topic == ALARMS and m.coordinates not in seen]:
                seen.add(msg.coordinates)
                await correlate(msg)
    alarms = [ALARM, {**ALARM, "alarm_id": "bad"}, {"alarm_id": "x"}]
    resp, _ = await asyncio.gather(svc.client.post("/alarms", params={"wait_s": 10}, json=alarms), stages())
    assert resp.status_code == 202
    body = resp.json()
    assert (body["accepted"], body["rejected"], body["pending"], body["records"]) == (1, 2, 0, 0)
    assert [r["index"] for r in body["reasons"]] == [1, 2]
    assert body["reasons"][0]["reason"] == "internal error while handling this input"


async def test_a_waiting_answer_does_not_hold_an_intake_slot(db):
    producer, inside, most = FakeProducer(), 0, 0
    send = producer.send_many

    async def held(records):
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.05)
        inside -= 1
        return await send(records)
    producer.send_many = held
    app = _app(db, producer, {}, limits=HttpLimits(max_decoded_bodies=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                 headers=await bearer(db)) as client:
        # The waiting answer waits 4 s; the quick ones must not wait behind it. Wide margins: a
        # loaded CI machine once stretched a 1 s wait past the quick answers.
        waiting = asyncio.create_task(client.post("/actions", params={"wait_s": 4}, json=RESOLVE))
        while most == 0:                                # its body is decoded and sent
            await asyncio.sleep(0.01)
        started = time.monotonic()
        quick = await asyncio.gather(*(client.post("/alarms", json=ALARM) for _ in range(3)))
        assert time.monotonic() - started < 3 and not waiting.done()
        assert [r.status_code for r in quick] == [202] * 3
        assert (await waiting).json()["pending"] == 1
    assert most == 1                                   # one body decoded and held at a time


# ---------------------------------------------------------------------- operations

async def test_health_readiness_and_metrics(svc):
    assert (await svc.client.get("/healthz")).json() == {"status": "ok"}
    ready = await svc.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    svc.state["warnings"].append("the holiday calendar ends on 2026-12-31")
    svc.state["problems"].append("database: OperationalError")
    ready = await svc.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["problems"] == ["database: OperationalError"]
    assert ready.json()["warnings"] == ["the holiday calendar ends on 2026-12-31"]
    svc.state["problems"].clear()
    assert (await svc.client.get("/readyz")).status_code == 200          # a warning is not unreadiness
    svc.state["down"] = "the engine task stopped"
    health, ready = await svc.client.get("/healthz"), await svc.client.get("/readyz")
    assert health.status_code == 503
    assert health.json() == {"status": "down", "detail": "the engine task stopped"}
    assert ready.status_code == 503 and ready.json()["status"] == "down"
    await svc.client.post("/alarms", json=ALARM)
    metrics = (await svc.client.get("/metrics")).text
    assert 'faultline_api_inputs_total{kind="alarm",outcome="accepted"} 1.0' in metrics


async def test_reads_of_an_empty_database(svc):
    for path in ("/faults", "/workorders", TMF621):
        resp = await svc.client.get(path)
        assert resp.status_code == 200 and resp.json() == [] and resp.headers["x-result-count"] == "0"
    assert (await svc.client.get("/decisions")).json() == {"decisions": [], "last_seq": 0}
    async with svc.engine.begin() as conn:          # a row written by other code: no digest, odd body
        await conn.execute(insert(audit).values(at="2026-11-25T10:00:00+08:00", stage="correlate", shard="GZ",
                                                type="x", body='{"type": "x"}'))
    assert (await svc.client.get("/decisions")).json()["decisions"] == [{"seq": 1, "record": {"type": "x"}}]
