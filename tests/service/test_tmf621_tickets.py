"""Work orders as TMF621 trouble tickets on `faultline run` (issue 10; services/http/tickets.py):
a work-order system with a city token lists its queue, takes an order in hand and resolves
it through the rules, and cannot touch another city's; CL-2's lifecycle, with 409 naming the
allowed next states; notes appended; every change in the audit trail with before and after;
TMF630 filters, fields=, paging headers and the Error shape."""

from __future__ import annotations

import asyncio
import time

import pytest
from tokens import bearer

from service.support import T0, FakeClock, alarm, live_service
from services.http.face import TMF621, TMF621_BASE
from services.http.tickets import ALLOWED, STATUSES

pytestmark = pytest.mark.asyncio


async def _setup(svc):
    """A fault in GZ (GZ-INT-0001 over GZ-CPE-0001) and one in FS, with their orders."""
    for res, aid in (("GZ-CPE-0001", "g1"), ("FS-CPE-0017", "f1")):
        assert (await svc.client.post("/alarms", json=alarm(res, aid))).status_code == 202
    await svc.settle()
    faults = {f["city"]: f for f in (await svc.client.get("/faults")).json()}
    return faults["GZ"], faults["FS"]


async def _tickets(svc, headers, **params):
    resp = await svc.client.get(TMF621, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp


async def test_CL2_a_city_work_order_system_lists_acks_and_resolves_its_orders(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        gz_fault, fs_fault = await _setup(svc)
        gz = await bearer(svc.runtime.db, "city-operator", "GZ")

        listed = await _tickets(svc, gz)
        mine = listed.json()
        assert mine and all(t["channel"]["name"].startswith("city.GZ.") for t in mine)
        assert listed.headers["x-total-count"] == listed.headers["x-result-count"] == str(len(mine))
        monitoring = [t for t in mine if t["channel"]["name"] == "city.GZ.monitoring"]
        (ticket,) = monitoring
        assert ticket["status"] == "acknowledged" and ticket["@type"] == "TroubleTicket"
        assert ticket["href"].endswith(f"{TMF621}/{ticket['id']}")
        assert {"id": gz_fault["fault_id"], "role": "fault", "@referredType": "Fault",
                "href": f"http://faultline/faults/{gz_fault['fault_id']}"} in ticket["relatedEntity"]
        assert {"id": "GZ-INT-0001", "role": "circuit", "@referredType": "Circuit"} in ticket["relatedEntity"]
        assert any(p["role"] == "owner" and p["id"] == "city.GZ.monitoring" for p in ticket["relatedParty"])
        assert ticket["statusChange"] == [{"changeDate": ticket["creationDate"], "status": "acknowledged",
                                           "changeReason": f"created by {ticket['ticketType']}"}]
        href = f"{TMF621}/{ticket['id']}"
        assert (await svc.client.get(href, headers=gz)).json() == ticket

        # taken in hand: the rules' `ack` (TM-9 counts it), then the status
        taken = await svc.client.patch(href, json={"status": "inProgress", "statusChangeReason": "on it"},
                                       headers=gz)
        assert taken.status_code == 200, taken.text
        body = taken.json()
        assert body["status"] == "inProgress" and body["statusChangeReason"] == "on it"
        assert [c["status"] for c in body["statusChange"]] == ["acknowledged", "inProgress"]

        # an illegal transition names the allowed next states
        illegal = await svc.client.patch(href, json={"status": "closed"}, headers=gz)
        assert illegal.status_code == 409
        err = illegal.json()
        assert err["code"] == "409" and err["@type"] == "Error" and err["reason"] == "Conflict"
        assert "inProgress cannot become closed" in err["message"]
        assert "allowed next: resolved, held, pending, cancelled" in err["message"]

        # notes are appended, never rewritten
        noted = await svc.client.patch(href, json={"note": [{"text": "fibre cut at km 12"}]}, headers=gz)
        notes = noted.json()["note"]
        assert [n["text"] for n in notes] == ["fibre cut at km 12"]
        assert notes[0]["author"] == "tests: city-operator"
        again = await svc.client.patch(href, json={"note": [*notes, {"text": "splicing"}]}, headers=gz)
        assert [n["text"] for n in again.json()["note"]] == ["fibre cut at km 12", "splicing"]

        # resolving an outage whose circuit is still down: the rules refuse it (CL-4)
        refused = await svc.client.patch(href, json={"status": "resolved"}, headers=gz)
        assert refused.status_code == 409 and "the rules refused resolve" in refused.json()["message"]
        assert (await svc.client.get(href, headers=gz)).json()["status"] == "inProgress"

        # another city's order: 403, whatever the change
        fs_ticket = next(t for t in (await _tickets(svc, None, fault=fs_fault["fault_id"])).json())
        other = await svc.client.patch(f"{TMF621}/{fs_ticket['id']}", json={"status": "held"}, headers=gz)
        assert other.status_code == 403 and "this token is GZ's" in other.json()["message"]
        assert (await svc.client.get(f"{TMF621}/{fs_ticket['id']}", headers=gz)).status_code == 403

        # the circuit comes back: the rules resolve the order (CL-2); only an operator closes it
        assert (await svc.client.post("/alarms", json=alarm("GZ-CPE-0001", "g1", state="cleared",
                                                             event_time="2026-11-25T10:05:00+08:00"))
                ).status_code == 202
        await svc.settle()
        resolved = (await svc.client.get(href, headers=gz)).json()
        assert resolved["status"] == "resolved" and resolved["resolutionDate"]
        assert resolved["statusChange"][-1]["status"] == "resolved"
        closed = await svc.client.patch(href, json={"status": "closed", "statusChangeReason": "customer ok"},
                                        headers=gz)
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        final = await svc.client.patch(href, json={"status": "inProgress"}, headers=gz)
        assert final.status_code == 409 and "none (final)" in final.json()["message"]

        # every change is in the audit trail, with who, before and after
        trail = (await svc.client.get("/audit")).json()["changes"]
        patches = [c for c in trail if c["action"] == f"PATCH {TMF621}/{{id}}"]
        assert [(c["detail"]["before"]["status"], c["detail"]["after"]["status"]) for c in patches] == [
            ("acknowledged", "inProgress"), ("inProgress", "inProgress"), ("inProgress", "inProgress"),
            ("resolved", "closed")]
        assert all(c["role"] == "city-operator" and c["city"] == "GZ" for c in patches)
        assert patches[0]["detail"]["input_ids"] and patches[1]["detail"]["notes_added"] == 1
        assert any(c["action"] == f"PATCH {TMF621}/{{id}}: ack" for c in trail)


async def test_CL2_held_pending_cancelled_are_the_operators_and_final_states_stay(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await _setup(svc)
        ticket = (await _tickets(svc, None, queue="city.GZ.monitoring")).json()[0]
        href = f"{TMF621}/{ticket['id']}"
        for status in ("held", "pending", "inProgress", "held", "cancelled"):
            resp = await svc.client.patch(href, json={"status": status})
            assert resp.status_code == 200, (status, resp.text)
            assert resp.json()["status"] == status
        assert (await svc.client.patch(href, json={"status": "inProgress"})).status_code == 409
        history = (await svc.client.get(href)).json()["statusChange"]
        assert [c["status"] for c in history] == ["acknowledged", "held", "pending", "inProgress", "held",
                                                  "cancelled"]


async def test_CL2_the_lifecycle_table_keeps_to_the_tmf621_statuses():
    assert set(ALLOWED) == set(STATUSES)
    assert all(set(nexts) <= set(STATUSES) for nexts in ALLOWED.values())
    assert ALLOWED["resolved"] == ("closed",) and ALLOWED["closed"] == ALLOWED["cancelled"] == ()
    assert "closed" not in ALLOWED["acknowledged"] + ALLOWED["inProgress"]   # only after resolved


async def test_tmf630_filters_fields_paging_and_errors(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        gz_fault, _fs = await _setup(svc)
        everything = await _tickets(svc, None)
        total = int(everything.headers["x-total-count"])
        assert total == len(everything.json()) >= 2
        page = await _tickets(svc, None, limit=1, offset=0)
        assert page.headers["x-total-count"] == str(total) and page.headers["x-result-count"] == "1"
        assert page.json()[0]["id"] == everything.json()[0]["id"] and page.headers["x-next-offset"] == "1"
        last = await _tickets(svc, None, limit=1, offset=total - 1)
        assert last.json()[0]["id"] == everything.json()[-1]["id"] and "x-next-offset" not in last.headers
        by_fault = (await _tickets(svc, None, fault=gz_fault["fault_id"])).json()
        assert by_fault
        assert all(gz_fault["fault_id"] in [e["id"] for e in t["relatedEntity"]] for t in by_fault)
        queues = sorted({t["channel"]["name"] for t in everything.json()})[:2]
        either = (await _tickets(svc, None, queue=",".join(queues))).json()
        assert sorted({t["channel"]["name"] for t in either}) == queues
        repeated = await svc.client.get(TMF621, params=[("queue", queues[0]), ("queue", queues[1])])
        assert [t["id"] for t in repeated.json()] == [t["id"] for t in either]
        created = everything.json()[0]["creationDate"]
        assert len((await _tickets(svc, None, **{"creationDate.gte": created})).json()) == total
        assert (await _tickets(svc, None, **{"creationDate.lt": created})).json() == []
        assert (await _tickets(svc, None, **{"creationDate.gt": "2026-11-25T01:00:00Z"})).json() != []
        assert (await _tickets(svc, None, status="closed")).headers["x-total-count"] == "0"
        only = (await _tickets(svc, None, fields="status,priority")).json()[0]
        assert set(only) == {"id", "href", "@type", "status", "priority"}
        one = (await svc.client.get(f"{TMF621}/{only['id']}", params={"fields": "name,bogus"})).json()
        assert set(one) == {"id", "href", "@type", "name"}

        for params, says in (({"colour": "red"}, "unknown filter attribute 'colour'"),
                             ({"status": "open"}, "filter status"),
                             ({"creationDate.gte": "yesterday"}, "not an ISO-8601"),
                             ({"creationDate.gte": "2026-11-25T10:00:00"}, "no UTC offset"),
                             ({"limit": "0"}, "limit")):
            bad = await svc.client.get(TMF621, params=params)
            assert bad.status_code == 400, (params, bad.text)
            assert bad.json()["@type"] == "Error" and says in bad.json()["message"], bad.text
        missing = await svc.client.get(f"{TMF621}/W-NOPE")
        assert missing.status_code == 404 and missing.json()["code"] == "404"
        assert missing.json()["message"] == missing.json()["detail"] == "no trouble ticket W-NOPE"
        href = f"{TMF621}/{only['id']}"
        for body, says in (({"id": "W-1"}, "set by the server"),
                           ({"priority": "urgent"}, "set by the rulebook"),
                           ({"status": "done"}, "status: expected one of"), ([], "JSON object"),
                           ({"note": None}, "note: expected a list"),
                           ({"note": [{"text": ""}]}, "note[0].text")):
            resp = await svc.client.patch(href, json=body)
            assert resp.status_code == 400 and says in resp.json()["message"], (body, resp.text)
        merge = await svc.client.patch(href, content=b'{"note": [{"text": "merge-patch"}]}',
                                       headers={"content-type": "application/merge-patch+json"})
        assert merge.status_code == 200 and merge.json()["note"][-1]["text"] == "merge-patch"
        assert (await svc.client.post(TMF621, json={"description": "x", "severity": "x",
                                                    "ticketType": "x"})).status_code == 405
        assert (await svc.client.delete(href)).status_code == 405
        svc.client.headers.pop("authorization")
        unauthorized = await svc.client.patch(href, json={"status": "held"})
        assert unauthorized.status_code == 401 and unauthorized.json()["@type"] == "Error"


async def _until(probe, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.05)


async def test_T5_a_listener_hears_the_rules_and_the_operators_changes(settings, listeners):
    """`faultline run` runs the hub's delivery loop: a listener registered by POST /hub hears
    a work order made by the rules (TroubleTicketCreateEvent) and an operator's status change
    (TroubleTicketStatusChangeEvent), each once, for its city only."""
    listener = listeners()
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        gz = await bearer(svc.runtime.db, "city-operator", "GZ")
        made = await svc.client.post(f"{TMF621_BASE}/hub", json={"callback": listener.url}, headers=gz)
        assert made.status_code == 201 and made.json()["query"] == "city=GZ", made.text
        await _setup(svc)
        await _until(lambda: any(b["eventType"] == "TroubleTicketCreateEvent" for b in listener.bodies()))
        created = [b for b in listener.bodies() if b["eventType"] == "TroubleTicketCreateEvent"]
        assert {b["event"]["troubleTicket"]["channel"]["name"].split(".")[1] for b in created} == {"GZ"}
        ticket = created[0]["event"]["troubleTicket"]
        held = await svc.client.patch(f"{TMF621}/{ticket['id']}", json={"status": "held"}, headers=gz)
        assert held.status_code == 200
        changed = "TroubleTicketStatusChangeEvent"
        await _until(lambda: any(b["eventType"] == changed for b in listener.bodies()))
        (change,) = [b for b in listener.bodies() if b["eventType"] == "TroubleTicketStatusChangeEvent"]
        assert change["event"]["troubleTicket"]["status"] == "held"
        assert len({b["eventId"] for b in listener.bodies()}) == len(listener.bodies())


async def test_a_ticket_holds_a_bounded_number_of_notes(settings, monkeypatch):
    monkeypatch.setattr("services.http.tickets.MAX_NOTES_PER_TICKET", 3)
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await _setup(svc)
        href = f"{TMF621}/{(await _tickets(svc, None)).json()[0]['id']}"
        ok = await svc.client.patch(href, json={"note": [{"text": "a"}, {"text": "b"}, {"text": "c"}]})
        assert ok.status_code == 200 and len(ok.json()["note"]) == 3
        full = await svc.client.patch(href, json={"note": [{"text": "d"}]})
        assert full.status_code == 409 and "at most 3" in full.json()["message"]
        assert len((await svc.client.get(href)).json()["note"]) == 3
