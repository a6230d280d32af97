"""The inventory over HTTP on `faultline run` (issue 10, deliverable 5; services/http/
inventory_routes.py, services/inventory_store.py): a bulk load is checked whole and refused
with every problem named, the old inventory kept; one that passes becomes the current
version atomically and every process restarts its loops on it; queries of customers,
circuits and resources, scoped for a city operator."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import subprocess
import sys

import httpx
import pytest
from tokens import bearer

from service.support import ROOT, T0, FakeClock, alarm, live_service, until_healthy
from services.http.guard import HttpLimits

pytestmark = pytest.mark.asyncio

SAMPLE = json.loads((ROOT / "samples" / "inventory.json").read_text())


def _with_new_circuit(doc: dict) -> dict:
    """The sample plus a circuit GZ-INT-9999 of C-NH over a new CPE, GZ-CPE-9999."""
    doc = copy.deepcopy(doc)
    doc["resources"].append({"resource_id": "GZ-CPE-9999", "layer": "cpe", "city": "GZ",
                             "maintainer": "city"})
    doc["circuits"].append({"circuit_id": "GZ-INT-9999", "customer_id": "C-NH", "service_type": "internet",
                            "a_city": "GZ", "z_city": None, "span": "local", "maintenance_transferred": False,
                            "paths": [["GZ-CPE-9999", "GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1"]]})
    return doc


async def test_a_bad_inventory_is_refused_whole_with_every_problem_and_the_old_one_stays(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        bad = _with_new_circuit(SAMPLE)
        bad["circuits"][-1]["customer_id"] = "C-NOBODY"
        bad["resources"][0]["layer"] = 7
        resp = await svc.client.post("/inventory", json=bad)
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert "2 problem(s); nothing changed" in body["detail"] and len(body["problems"]) == 2
        assert any("C-NOBODY" in p for p in body["problems"]) and any("layer" in p for p in body["problems"])
        assert (await svc.client.get("/inventory")).json() == {"serving": None, "versions": []}
        assert (await svc.client.get("/inventory/circuits/GZ-INT-9999")).status_code == 404
        for doc in (b"[1, 2]", b'{"customers": []}', b"{"):
            refused = await svc.client.post("/inventory", content=doc,
                                            headers={"content-type": "application/json"})
            assert refused.status_code == 422, (doc, refused.text)
        assert (await svc.client.get("/inventory")).json()["versions"] == []


async def test_a_loaded_inventory_is_the_current_version_and_a_restart_runs_on_it(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        new = _with_new_circuit(SAMPLE)
        made = await svc.client.post("/inventory", json=new)
        assert made.status_code == 201, made.text
        meta = made.json()
        assert (meta["version"], meta["circuits"], meta["changed"]) == (1, 18, True)
        again = await svc.client.post("/inventory", json=new)
        assert again.status_code == 200 and again.json()["changed"] is False and again.json()["version"] == 1
        listed = (await svc.client.get("/inventory")).json()
        assert listed["serving"] is None and [v["version"] for v in listed["versions"]] == [1]
        trail = (await svc.client.get("/audit")).json()["changes"]
        assert [c["detail"]["changed"] for c in trail if c["action"] == "POST /inventory"] == [True, False]
        # an alarm on the new CPE: the running loops still have the old inventory
        await svc.client.post("/alarms", json=alarm("GZ-CPE-9999", "n1"))
        await svc.settle()
        assert [f["circuit_id"] for f in (await svc.client.get("/faults")).json()] == []
    async with live_service(settings, FakeClock(T0 + 10)) as svc:      # the same database, restarted
        listed = (await svc.client.get("/inventory")).json()
        assert listed["serving"] == 1
        circuit = await svc.client.get("/inventory/circuits/GZ-INT-9999")
        assert circuit.status_code == 200 and circuit.json()["paths"][0][0] == "GZ-CPE-9999"
        await svc.client.post("/alarms", json=alarm("GZ-CPE-9999", "n2"))
        await svc.settle()
        assert [f["circuit_id"] for f in (await svc.client.get("/faults")).json()] == ["GZ-INT-9999"]


async def test_inventory_queries_filters_paging_and_a_city_operators_view(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        customers = await svc.client.get("/inventory/customers")
        assert customers.headers["x-total-count"] == str(len(SAMPLE["customers"]))
        assert [c["customer_id"] for c in customers.json()] == [c["customer_id"] for c in SAMPLE["customers"]]
        one = (await svc.client.get("/inventory/customers/C-NH")).json()
        assert one["name"] == "南方航空集团公司" and "GZ-INT-0001" in one["circuits"]
        internet = (await svc.client.get("/inventory/circuits", params={"service_type": "internet"})).json()
        assert internet and {c["service_type"] for c in internet} == {"internet"}
        page = await svc.client.get("/inventory/resources", params={"limit": 5, "offset": 5})
        assert len(page.json()) == 5 and page.headers["x-next-offset"] == "10"
        cpe = (await svc.client.get("/inventory/resources/GZ-CPE-0001")).json()
        assert cpe["layer"] == "cpe" and cpe["circuits"] == ["GZ-INT-0001"]
        assert (await svc.client.get("/inventory/resources/NOPE")).status_code == 404

        gz = await bearer(svc.runtime.db, "city-operator", "GZ")
        mine = (await svc.client.get("/inventory/circuits", headers=gz)).json()
        assert mine and all("GZ" in (c["a_city"], c["z_city"]) for c in mine)
        gz_resources = (await svc.client.get("/inventory/resources", headers=gz)).json()
        assert gz_resources and all(r["city"] == "GZ" for r in gz_resources)
        fs_circuit = next(c["circuit_id"] for c in SAMPLE["circuits"]
                          if "GZ" not in (c["a_city"], c["z_city"]))
        assert (await svc.client.get(f"/inventory/circuits/{fs_circuit}", headers=gz)).status_code == 404
        assert (await svc.client.post("/inventory", json=SAMPLE, headers=gz)).status_code == 403


async def test_an_inventory_body_has_its_own_limit(settings, tmp_path):
    import dataclasses

    limited = dataclasses.replace(settings, http=HttpLimits(max_body_bytes=1024, max_inventory_bytes=4096))
    async with live_service(limited, FakeClock(T0 + 5)) as svc:
        big = _with_new_circuit(SAMPLE)
        resp = await svc.client.post("/inventory", json=big)
        assert resp.status_code == 413 and "over 4096 bytes" in resp.json()["detail"]
        small = {"customers": [], "resources": [], "circuits": []}
        assert (await svc.client.post("/inventory", json=small)).status_code == 201
        assert (await svc.client.post("/alarms", json=[alarm("GZ-CPE-0001", str(i)) for i in range(20)])
                ).status_code == 413                             # other bodies keep theirs


async def test_faultline_run_restarts_its_loops_on_a_loaded_inventory(tmp_path):
    """The real command: POST /inventory; within the watch's few seconds every loop and the HTTP
    server drain and start again on it (GET /inventory says `serving`), and an alarm on the
    new circuit opens a fault."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FAULTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
           "FAULTLINE_HTTP_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "run", "--inventory", str(ROOT / "samples" / "inventory.json"),
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        token = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            await until_healthy(http)
            assert (await http.post("/inventory", json=_with_new_circuit(SAMPLE))).status_code == 201
            serving = None
            for _ in range(300):
                try:
                    serving = (await http.get("/inventory")).json()["serving"]
                except (httpx.TransportError, ValueError):
                    serving = None                     # the server is between its generations
                if serving == 1:
                    break
                await asyncio.sleep(0.1)
            assert serving == 1
            posted = await http.post("/alarms", params={"wait_s": 10}, json=alarm("GZ-CPE-9999", "n1"))
            assert posted.status_code == 202 and posted.json()["records"], posted.text
            faults = (await http.get("/faults")).json()
            assert [f["circuit_id"] for f in faults] == ["GZ-INT-9999"]
    finally:
        proc.terminate()
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert "restarting on the inventory loaded through the API" in err.decode()
    assert proc.returncode == 0, err.decode()[-2000:]


async def test_only_the_newest_inventory_versions_are_kept(settings, monkeypatch):
    monkeypatch.setattr("services.inventory_store.KEEP_VERSIONS", 2)
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        doc = copy.deepcopy(SAMPLE)
        for n in range(3):
            doc["customers"][0]["name"] = f"name {n}"
            assert (await svc.client.post("/inventory", json=doc)).status_code == 201
        assert [v["version"] for v in (await svc.client.get("/inventory")).json()["versions"]] == [3, 2]
