"""services/http/fault_detail.py on SQLite and PostgreSQL (RULES.md CL-3): the read model
filled by projecting what `faultline replay` makes of samples/ (its records, the alarms and
complaints it took in, and the complaint links the correlator keeps), then one fault's
detail read back, and rendered as the 48-hour report (TM-7, dispatcher/report.py)."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from sqlalchemy import insert

from dispatcher.report import report_html, report_markdown
from services.commands.replay import Replay
from services.drivers.pipeline import Pipeline
from services.http.fault_detail import fault_detail
from shared.clock import parse_time
from shared.db.models import timers
from shared.db.projection import apply_state, project_batch
from shared.inventory import parse_inventory
from shared.rulebook import load_rulebook

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = parse_inventory(orjson.loads((ROOT / "samples" / "inventory.json").read_bytes()))
LINES = [line for line in (ROOT / "samples" / "replay_events.jsonl").read_text().splitlines() if line.strip()]
UNTIL = "2026-11-25T19:00:00+08:00"


class Replayed:
    def __init__(self) -> None:
        self.pipeline = Pipeline(INVENTORY, load_rulebook())
        out = io.BytesIO()
        status = Replay(self.pipeline, out).run(io.BytesIO(("\n".join(LINES) + "\n").encode()),
                                                parse_time(UNTIL))
        assert status == 3                       # line 12 is refused (CL-4), as the README says
        self.records = [orjson.loads(x) for x in out.getvalue().splitlines()]
        inputs = [orjson.loads(line) for line in LINES]
        self.inputs = [(i["kind"], i[i["kind"]], i["at"]) for i in inputs
                       if i["kind"] in ("alarm", "complaint")]

    def state(self) -> list[tuple[str, dict, dict]]:
        """What the correlate stage writes and no record carries: each fault's complaints and the
        fault a complaint formed or joined (services/drivers/stage_logic.py complaint_links)."""
        out = []
        for fid, f in self.pipeline.correlator.faults.items():
            if f.complaints or f.customer_reported:
                out.append(("faults", {"fault_id": fid}, {"complaints": orjson.dumps(f.complaints).decode(),
                                                          "customer_reported": f.customer_reported}))
                out.extend(("complaints", {"complaint_id": c, "fault_id": None}, {"fault_id": fid})
                           for c in f.complaints)
        return out

    def of(self, type_: str, **match) -> list[dict]:
        return [r for r in self.records
                if r["type"] == type_ and all(r.get(k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def replayed() -> Replayed:
    return Replayed()


@pytest.fixture
async def db(any_db, replayed):
    """The read model of the replay, plus one pending timer (the stage writes `timers`)."""
    def fill(conn) -> None:
        project_batch(conn, replayed.inputs, [("GZ", r) for r in replayed.records], stage="correlate")
        apply_state(conn, replayed.state())

    async with any_db.begin() as conn:
        await conn.run_sync(fill)
        await conn.execute(insert(timers).values(stage="dispatch", shard="GZ", fault_id="F-000005",
                                                 kind="TM-6", due=parse_time("2026-11-25T20:10:00+08:00")))
    return any_db


def _serious_ended(replayed: Replayed) -> str:
    """F-000001: 南方航空's internet line GZ-INT-0001, serious by SF-3 at 10:30, ended 10:44."""
    fid = replayed.of("fault.opened", circuit_id="GZ-INT-0001")[0]["fault_id"]
    assert replayed.of("fault.serious", fault_id=fid) and replayed.of("fault.cleared", fault_id=fid)
    return fid


async def test_CL3_detail_of_a_serious_fault_keeps_its_orders_notices_and_alarms(db, replayed):
    fid = _serious_ended(replayed)
    async with db.connect() as conn:
        detail = await fault_detail(conn, fid, INVENTORY)
    assert detail is not None
    orjson.dumps(detail)                                             # JSON-able, str keys
    fault = detail["fault"]
    assert (fault["fault_id"], fault["severity"], fault["rule"], fault["trigger"]) == (fid, "serious", "SF-3",
                                                                                      "duration")
    assert (fault["opened_at"], fault["ended_at"], fault["duration_s"]) == (
        "2026-11-25T10:00:00+08:00", "2026-11-25T10:44:00+08:00", 2640)
    assert fault["customer_name"] == "南方航空集团公司"
    assert detail["customer"] == {"customer_id": "C-NH", "name": "南方航空集团公司", "level": "provincial",
                                  "grade": "gold", "hq_city": "GZ", "important": True}
    circuit = detail["circuit"]
    assert (circuit["circuit_id"], circuit["span"], len(circuit["paths"])) == ("GZ-INT-0001", "local", 2)
    path_resources = {r["resource_id"] for r in circuit["resources"]}
    assert "GZ-OTN-A:1-3-1" in path_resources

    # every work order whose fault_ids name it, full bodies
    made = {r["work_order_id"] for r in replayed.of("work_order.created") if fid in r["fault_ids"]}
    made |= {r["work_order_id"] for r in replayed.of("work_order.updated") if fid in r["fault_ids"]}
    orders = {o["work_order_id"]: o for o in detail["work_orders"]}
    assert set(orders) == made == set(fault["work_orders"]) and len(made) >= 4
    assert {o["status"] for o in orders.values()} == {"resolved"}
    assert {"prov.specialist.transmission", "prov.monitoring", "prov.netservice", "city.GZ.monitoring"} <= \
        {o["queue"] for o in orders.values()}
    assert all(o["created_at"] and o["title"] for o in orders.values())

    # notifications: SMS new and recovered (recipients decoded), phone, on site, report.due
    notes = detail["notifications"]
    sms = [n for n in notes if n["type"] == "sms"]
    assert [n["stage"] for n in sms] == ["new", "recovered"]
    assert all(isinstance(n["recipients"], list) and "prov.nmc" in n["recipients"] for n in sms)
    assert sms[0]["text"].startswith("【新|影响业务|严重故障|南方航空集团公司")
    assert [n["target"] for n in notes if n["type"] == "phone.notify"] == ["prov.netservice"]
    onsite = [n for n in notes if n["type"] == "onsite.required"]
    assert [(n["queue"], n["rule"], n["deadline"]) for n in onsite] == [
        ("prov.netservice", "TM-3", "2026-11-25T10:45:00+08:00")]
    assert [n["due"] for n in notes if n["type"] == "report.due"] == ["2026-11-27T10:44:00+08:00"]
    assert [n["at"] for n in notes] == sorted(n["at"] for n in notes)
    assert detail["escalations"] == [] and detail["timers"] == [] and detail["complaints"] == []

    # the alarms that formed it: on the circuit's resources, overlapping the fault
    alarms = {a["alarm_id"]: a for a in detail["alarms"]}
    assert {"884200", "884213"} <= set(alarms)
    assert {a["resource_id"] for a in detail["alarms"]} <= path_resources
    assert "X-1" not in alarms and "884390" not in alarms            # unmapped; another circuit's
    assert alarms["884213"]["state"] == "cleared" and alarms["884213"]["count"] == 3
    assert [a["event_time"] for a in detail["alarms"]] == sorted(a["event_time"] for a in detail["alarms"])
    assert detail["alarms_more"] is False

    # the incident: one fibre, three customers' faults
    incident = detail["incident"]
    assert incident["incident_id"] == fault["incident_id"] and incident["root_resource"] == "GZ-OTN-A:1-3-1"
    assert incident["fault_count"] == len(incident["faults"]) == 3
    assert fid in {m["fault_id"] for m in incident["faults"]}

    # and the 48-hour report renders from it
    md, page = report_markdown(detail), report_html(detail)
    assert "2026-11-27T10:44:00+08:00" in md and "0小时44分钟" in md
    assert all(o in md for o in made) and "南方航空集团公司" in page


async def test_CL3_detail_of_an_open_serious_fault_keeps_its_escalations_and_timers(db, replayed):
    fid = replayed.of("fault.opened", circuit_id="GZ-CL-0103")[0]["fault_id"]
    async with db.connect() as conn:
        detail = await fault_detail(conn, fid, INVENTORY)
    assert detail["fault"]["severity"] == "serious" and detail["fault"]["ended_at"] is None
    assert [(e["reason"], e["to"]) for e in detail["escalations"]] == [
        ("ES-3", "prov.monitoring"), ("ES-5", "prov.monitoring"), ("ES-2", "prov.monitoring")]
    assert [e["at"] for e in detail["escalations"]] == [
        "2026-11-25T10:10:03+08:00", "2026-11-25T11:00:00+08:00", "2026-11-25T18:10:00+08:00"]
    assert detail["timers"] == [{"kind": "TM-6", "due": "2026-11-25T20:10:00+08:00", "stage": "dispatch",
                                 "shard": "GZ"}]
    assert detail["circuit"]["z_city"] == "SZ" and detail["customer"]["level"] == "city"
    assert {a["alarm_id"] for a in detail["alarms"]} == {"884390"}    # still raised: the fault is open
    assert [n["type"] for n in detail["notifications"] if n["type"] == "report.due"] == []


async def test_CL3_detail_of_an_SF6b_fault_lists_its_complaints(db, replayed):
    fid = replayed.of("fault.serious", rule="SF-6b")[0]["fault_id"]
    async with db.connect() as conn:
        detail = await fault_detail(conn, fid, INVENTORY)
    assert detail["customer"] is None and detail["circuit"] is None and detail["alarms"] == []
    listed = detail["fault"]["complaints"]
    assert len(listed) >= 3
    assert [c["complaint_id"] for c in detail["complaints"]] == listed
    assert {c["customer_id"] for c in detail["complaints"]} == {"C-FS-017", "C-FS-018", "C-FS-019"}
    assert all(c["received_at"] and c["channel"] == "10086-8" for c in detail["complaints"])
    assert [n["due"] for n in detail["notifications"] if n["type"] == "report.due"] == [
        "2026-11-27T11:30:00+08:00"]


async def test_CL3_detail_without_an_inventory_and_of_an_unknown_fault(db, replayed):
    fid = _serious_ended(replayed)
    async with db.connect() as conn:
        bare = await fault_detail(conn, fid, None)
        assert await fault_detail(conn, "F-999999", INVENTORY) is None
    assert bare["customer"] == {"customer_id": "C-NH"} and bare["circuit"] == {"circuit_id": "GZ-INT-0001"}
    assert bare["fault"]["customer_name"] is None
    # without the inventory only the root resource is known: its alarm is still found
    assert {a["resource_id"] for a in bare["alarms"]} == {"GZ-OTN-A:1-3-1"}
    assert "F-" in report_markdown(bare)
