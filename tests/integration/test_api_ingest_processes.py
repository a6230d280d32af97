"""`faultline api` and `faultline ingest` as processes on Tansu and PostgreSQL: intake reaches
faultline.alarms / faultline.actions, a refused body is answered 422 and dead-lettered, and
ingest normalizes raw feeds (refusing what it cannot read, with the reason and the source)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import orjson
from tokens import bearer_at

from shared.topics import ACTIONS, ALARMS, DEADLETTER, raw_alarms_topic
from shared.transport.kafka import Consumer, KafkaConfig, Producer

from .kafka_fixtures import free_port
from .pipeline_support import Proc, stage_env, wait_http

ROOT = Path(__file__).resolve().parents[2]
ALARM = {"source": "gd-otn-nms-1", "alarm_id": "884213", "resource_id": "GZ-OTN-A:1-3-1",
         "probable_cause": "LOS", "severity": "critical", "state": "raised",
         "event_time": "2026-11-25T10:00:00+08:00", "text": "R_LOS"}


async def read(bootstrap: str, topics: list[str], n: int, timeout: float = 30) -> list:
    consumer = Consumer(KafkaConfig(bootstrap), topics, f"test-{time.time_ns()}")
    await consumer.start()
    got = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            got.extend(await consumer.fetch(timeout_ms=500))
    finally:
        await consumer.stop()
    return got


async def test_api_intake_publishes_and_refuses_with_reasons(broker, pg_url, tmp_path):
    env = stage_env(broker.bootstrap, pg_url, ROOT / "samples" / "inventory.json")
    api = Proc("api", env, tmp_path).start()
    try:
        await wait_http(api.port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}",
                                     headers=await bearer_at(pg_url)) as http:
            ok = await http.post("/alarms", json=ALARM)
            bad = await http.post("/alarms", json={**ALARM, "severity": "loud"})
            complaint = await http.post("/complaints", json={
                "complaint_id": "CSP-1", "channel": "400", "customer_id": "C-NH", "city": "GZ",
                "service_type": "internet", "scope": "all_users", "text": "全部无法上网"})
            confirm = {"kind": "confirm", "select": {"circuit_id": "GZ-INT-0001"}, "impact": "full_block"}
            action = await http.post("/actions", json=confirm)
            ready = await http.get("/readyz")
            faults = await http.get("/faults")
        assert (ok.status_code, complaint.status_code, action.status_code) == (202, 202, 202)
        assert bad.status_code == 422 and "severity" in bad.json()["detail"]
        assert ready.status_code == 200 and faults.status_code == 200
        msgs = await read(broker.bootstrap, [ALARMS, ACTIONS, DEADLETTER], 4)
        by_topic = {}
        # The complaint (keyed by city) and the action (unkeyed) may sit on different
        # partitions: a consumer reads partitions in any order, so order by message time.
        for m in sorted(msgs, key=lambda m: (m.timestamp_ms, m.topic, m.partition, m.offset)):
            by_topic.setdefault(m.topic, []).append(orjson.loads(m.value))
        assert by_topic[ALARMS] == [ALARM]
        # An input's id is the coordinates of the message it became, as the router passes them on.
        assert ok.json()["input_ids"] == [m.coordinates for m in msgs if m.topic == ALARMS]
        assert bad.json()["input_ids"] == [None] and action.json()["pending"] == 1
        assert [a["kind"] for a in by_topic[ACTIONS]] == ["complaint", "confirm"]
        assert "severity" in by_topic[DEADLETTER][0]["reason"]
    finally:
        assert api.terminate() == 0


async def test_ingest_normalizes_raw_feeds_and_dead_letters_the_unreadable(broker, pg_url, tmp_path):
    syslog_port, trap_port = free_port(), free_port()
    env = {**stage_env(broker.bootstrap, pg_url, ROOT / "samples" / "inventory.json"),
           "FAULTLINE_SYSLOG_UDP_PORT": str(syslog_port), "FAULTLINE_SNMP_TRAP_PORT": str(trap_port)}
    ingest = Proc("ingest", env, tmp_path).start()
    try:
        await wait_http(ingest.port)
        producer = Producer(KafkaConfig(broker.bootstrap))
        await producer.start()
        tmf = {"id": "T-1", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "probableCause": "LOS",
               "perceivedSeverity": "critical", "state": "raised", "eventTime": "2026-11-25T10:00:00+08:00",
               "sourceSystemId": "gd-otn-nms-1"}
        await producer.send(raw_alarms_topic("normalized"), orjson.dumps(ALARM))
        await producer.send(raw_alarms_topic("tmf642"), orjson.dumps(tmf))
        await producer.send(raw_alarms_topic("normalized"), b"{not json")
        await producer.stop()
        line = (b"<187>Nov 25 2026 10:00:00 GZ-PE-01 %%01IFNET/4/LINK_STATE(l)[12]:The line protocol IP "
                b"on the interface GigabitEthernet0/0/1 has entered the DOWN state.")
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", syslog_port))
        transport.sendto(line)
        transport.sendto(b"<999>not a priority \xff")
        transport.close()
        expected = 5
        if shutil.which("snmptrap"):                 # IF-MIB linkDown from net-snmp, v2c
            subprocess.run(["snmptrap", "-m", "", "-v", "2c", "-c", "public", f"127.0.0.1:{trap_port}", "",
                            "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.7", "i", "7",
                            "1.3.6.1.2.1.2.2.1.2.7", "s", "GE0/0/7"], check=True, capture_output=True,
                           env={**os.environ, "SNMPCONFPATH": str(tmp_path),
                                "SNMP_PERSISTENT_DIR": str(tmp_path)})
            expected += 1
        msgs = await read(broker.bootstrap, [ALARMS, DEADLETTER], expected)
        alarms = [orjson.loads(m.value) for m in msgs if m.topic == ALARMS]
        letters = [orjson.loads(m.value) for m in msgs if m.topic == DEADLETTER]
        assert ALARM in alarms
        assert any(a["alarm_id"] == "T-1" and a["resource_id"] == "GZ-OTN-A:1-3-1" for a in alarms)
        json_letter = [x for x in letters if x["topic"] == raw_alarms_topic("normalized")]
        assert len(json_letter) == 1 and "not valid JSON" in json_letter[0]["reason"]
        assert "offset" in json_letter[0]
        # A Huawei VRP line becomes an alarm by the vendor mapping; an unreadable one is kept
        # with its reason, its sender and its bytes whole.
        assert {"source": "syslog", "alarm_id": "GZ-PE-01:GigabitEthernet0/0/1:LINK_DOWN",
                "resource_id": "GZ-PE-01:GigabitEthernet0/0/1", "probable_cause": "LINK_DOWN",
                "severity": "major", "state": "raised", "event_time": "2026-11-25T10:00:00+08:00",
                "text": line.decode()[35:]} in alarms
        if expected == 6:
            assert any(a["resource_id"] == "127.0.0.1:GE0/0/7" and a["probable_cause"] == "LINK_DOWN"
                       and a["source"] == "snmp" for a in alarms)
        syslog = [x for x in letters if x["topic"] == raw_alarms_topic("syslog")]
        assert len(syslog) == 1 and "PRI <999> is out of range" in syslog[0]["reason"]
        assert syslog[0]["value"]["sender"] == "127.0.0.1"
        assert base64.b64decode(syslog[0]["value"]["base64"]) == b"<999>not a priority \xff"
    finally:
        assert ingest.terminate() == 0
    await asyncio.sleep(0)
