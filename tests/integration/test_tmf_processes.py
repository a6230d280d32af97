"""The TMF API of `faultline api` over the production processes (`ingest`, `correlate`,
`dispatch`) on Tansu and PostgreSQL (issue 10's "done when"): a work-order system with a
city token lists its queue, takes an order in hand and resolves it through the rules, and
cannot touch another city's; an illegal transition is 409; every change is audited; a TMF642
alarm goes through ingest; and an inventory loaded through the API is taken up by every
process, which restarts its loops on it."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import httpx
from tokens import bearer_at

from .pipeline_support import Proc, stage_env, wait_http

ROOT = Path(__file__).resolve().parents[2]
TMF621 = "/tmf-api/troubleTicket/v4/troubleTicket"
WAIT = {"wait_s": 20}


def alarm(resource: str, alarm_id: str, state: str = "raised", at: str = "2026-11-25T10:00:00+08:00") -> dict:
    return {"source": "gd-otn-nms-1", "alarm_id": alarm_id, "resource_id": resource, "probable_cause": "LOS",
            "severity": "critical", "state": state, "event_time": at, "text": "R_LOS"}


async def _until(probe, timeout_s: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            got = await probe()
        except (httpx.TransportError, ValueError):
            got = None
        if got:
            return got
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.2)


async def test_a_city_work_order_system_drives_its_orders_through_the_production_processes(
        broker, pg_url, tmp_path):
    env = stage_env(broker.bootstrap, pg_url, ROOT / "samples" / "inventory.json")
    procs = [Proc(stage, env, tmp_path).start() for stage in ("api", "ingest", "correlate", "dispatch")]
    api = procs[0]
    try:
        for p in procs:
            await wait_http(p.port)
        admin = await bearer_at(pg_url)
        gz = await bearer_at(pg_url, "city-operator", "GZ")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api.port}", headers=admin,
                                     timeout=30) as http:
            for res, aid in (("GZ-CPE-0001", "g1"), ("FS-CPE-0017", "f1")):
                taken = await http.post("/alarms", params=WAIT, json=alarm(res, aid))
                assert taken.status_code == 202 and taken.json()["pending"] == 0, taken.text
            mine = (await http.get(TMF621, headers=gz)).json()
            assert mine and all(t["channel"]["name"].startswith("city.GZ.") for t in mine)
            (ticket,) = [t for t in mine if t["channel"]["name"] == "city.GZ.monitoring"]
            href = f"{TMF621}/{ticket['id']}"
            moved = await http.patch(href, params=WAIT, json={"status": "inProgress"}, headers=gz)
            assert moved.status_code == 200 and moved.json()["status"] == "inProgress", moved.text
            illegal = await http.patch(href, json={"status": "closed"}, headers=gz)
            assert illegal.status_code == 409 and "allowed next: resolved" in illegal.json()["message"]
            down = await http.patch(href, params=WAIT, json={"status": "resolved"}, headers=gz)
            assert down.status_code == 409 and "the rules refused resolve" in down.json()["message"]
            fs = [t for t in (await http.get(TMF621)).json()
                  if t["channel"]["name"].startswith("city.FS.")]
            other = await http.patch(f"{TMF621}/{fs[0]['id']}", json={"status": "held"}, headers=gz)
            assert other.status_code == 403

            cleared = await http.post("/alarms", params=WAIT,
                                      json=alarm("GZ-CPE-0001", "g1", "cleared", "2026-11-25T10:05:00+08:00"))
            assert cleared.status_code == 202 and cleared.json()["pending"] == 0
            assert (await http.get(href, headers=gz)).json()["status"] == "resolved"
            closed = await http.patch(href, json={"status": "closed"}, headers=gz)
            assert closed.status_code == 200 and closed.json()["status"] == "closed"
            trail = (await http.get("/audit")).json()["changes"]
            assert [(c["detail"]["before"]["status"], c["detail"]["after"]["status"]) for c in trail
                    if c["action"] == f"PATCH {TMF621}/{{id}}"] == [("acknowledged", "inProgress"),
                                                                     ("resolved", "closed")]

            tmf = {"alarmType": "communicationsAlarm", "perceivedSeverity": "major", "probableCause": "LOS",
                   "alarmedObject": {"id": "SZ-CPE-0001"}, "sourceSystemId": "nms-tmf", "state": "raised",
                   "alarmRaisedTime": "2026-11-25T10:10:00+08:00", "externalAlarmId": "t1"}
            made = await http.post("/tmf-api/alarm/v4/alarm", json=tmf)
            assert made.status_code == 201 and made.json()["id"] == "nms-tmf:t1"

            async def kept():
                got = await http.get(made.headers["location"].split(f":{api.port}", 1)[1])
                return got.status_code == 200 and got.json()
            assert (await _until(kept))["alarmedObject"] == {"id": "SZ-CPE-0001"}   # through ingest

            # an inventory loaded through the API: every process restarts its loops on it
            doc = json.loads((ROOT / "samples" / "inventory.json").read_text())
            doc = copy.deepcopy(doc)
            doc["resources"].append({"resource_id": "GZ-CPE-9999", "layer": "cpe", "city": "GZ",
                                     "maintainer": "city"})
            doc["circuits"].append({"circuit_id": "GZ-INT-9999", "customer_id": "C-NH",
                                    "service_type": "internet", "a_city": "GZ", "z_city": None,
                                    "span": "local", "maintenance_transferred": False,
                                    "paths": [["GZ-CPE-9999", "GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1"]]})
            assert (await http.post("/inventory", json=doc)).status_code == 201

            async def serving():
                return (await http.get("/inventory")).json()["serving"] == 1
            await _until(serving)
            for p in procs[2:]:
                await _until(lambda p=p: asyncio.to_thread(
                    lambda: "restarting on the inventory loaded through the API" in p.log_path.read_text()))
                await wait_http(p.port)

            async def opened():
                posted = await http.post("/alarms", params=WAIT, json=alarm("GZ-CPE-9999", "n1"))
                faults = (await http.get("/faults")).json()
                return posted.status_code == 202 and "GZ-INT-9999" in [f["circuit_id"] for f in faults]
            assert await _until(opened)
    finally:
        for p in procs:
            assert p.terminate() == 0, p.tail()
