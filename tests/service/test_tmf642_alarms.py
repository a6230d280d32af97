"""Alarms as TMF642 on `faultline run` (issue 10; services/http/alarms642.py): create through
ingest like a feed (normalized, deduplicated, dead-lettered), list with filters and paging,
get one, acknowledge / unacknowledge, comment and clear (a clear reaches the rules), at the
official base path and at the alias; the province's only."""

from __future__ import annotations

import pytest
from tokens import bearer

from service.support import T0, FakeClock, live_service, published_values
from services.http.alarms642 import BASES
from shared.topics import DEADLETTER

pytestmark = pytest.mark.asyncio

TMF_ALARM = {"alarmType": "communicationsAlarm", "perceivedSeverity": "critical", "probableCause": "LOS",
             "specificProblem": "R_LOS", "alarmedObject": {"id": "GZ-CPE-0001"},
             "sourceSystemId": "gd-otn-nms-1", "state": "raised",
             "alarmRaisedTime": "2026-11-25T10:00:00+08:00"}


@pytest.mark.parametrize("root", BASES)
async def test_tmf642_create_list_get_ack_comment_and_clear(settings, root):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        made = await svc.client.post(f"{root}/alarm", json={**TMF_ALARM, "externalAlarmId": "884213"})
        assert made.status_code == 201, made.text
        alarm = made.json()
        assert alarm["id"] == "gd-otn-nms-1:884213" and made.headers["location"] == alarm["href"]
        assert alarm["href"] == f"http://faultline{root}/alarm/gd-otn-nms-1%3A884213"
        assert alarm["alarmReportingTime"] and alarm["state"] == "raised"
        await svc.settle()
        faults = (await svc.client.get("/faults")).json()
        assert [f["circuit_id"] for f in faults] == ["GZ-INT-0001"]          # it went through the rules

        listed = await svc.client.get(f"{root}/alarm", params={"alarmedObject.id": "GZ-CPE-0001"})
        assert listed.status_code == 200 and listed.headers["x-total-count"] == "1"
        (row,) = listed.json()
        assert (row["id"], row["perceivedSeverity"], row["ackState"]) == (alarm["id"], "critical",
                                                                         "unacknowledged")
        assert (await svc.client.get(f"{root}/alarm", params={"state": "cleared"})).json() == []
        assert (await svc.client.get(alarm["href"])).json() == row
        assert (await svc.client.get(f"{root}/alarm/nms:none")).status_code == 404

        acked = await svc.client.patch(alarm["href"], json={"ackState": "acknowledged", "ackUserId": "li"})
        assert acked.status_code == 200 and (acked.json()["ackState"], acked.json()["ackUserId"]) == (
            "acknowledged", "li")
        task = await svc.client.post(f"{root}/unAckAlarms",
                                     json={"alarmPattern": [{"alarmedObject": {"id": "GZ-CPE-0001"}}]})
        assert task.status_code == 201 and [a["id"] for a in task.json()["unAckedAlarm"]] == [alarm["id"]]
        commented = await svc.client.post(f"{root}/commentAlarms", json={
            "alarmPattern": [{"id": alarm["id"]}], "comment": [{"comment": "fibre cut", "userId": "li"}]})
        assert commented.status_code == 201
        got = (await svc.client.get(alarm["href"])).json()
        assert got["ackState"] == "unacknowledged" and got["comment"][0]["comment"] == "fibre cut"

        cleared = await svc.client.patch(alarm["href"], json={"state": "cleared", "clearUserId": "li"})
        assert cleared.status_code == 200 and cleared.json()["perceivedSeverity"] == "cleared"
        await svc.settle()
        assert (await svc.client.get("/faults")).json()[0]["ended_at"]          # the rules saw the clear
        now = (await svc.client.get(alarm["href"])).json()
        assert (now["state"], now["clearUserId"]) == ("cleared", "li") and now["alarmClearedTime"]
        again = await svc.client.patch(alarm["href"], json={"perceivedSeverity": "major"})
        assert again.status_code == 409 and "can no longer be set" in again.json()["message"]

        trail = [c["action"] for c in (await svc.client.get("/audit")).json()["changes"]]
        assert trail == [f"POST {root}/alarm", f"PATCH {root}/alarm/{{id}}", f"POST {root}/unAckAlarms",
                         f"POST {root}/commentAlarms", f"PATCH {root}/alarm/{{id}}"]


async def test_tmf642_a_body_ingest_would_refuse_is_400_and_kept(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        root = BASES[0]
        for body, says in (({**TMF_ALARM, "alarmedObject": None}, "missing field alarmedObject"),
                           ({**TMF_ALARM, "perceivedSeverity": "loud"}, "perceivedSeverity"),
                           ([1, 2], "expected a TMF642 Alarm object")):
            resp = await svc.client.post(f"{root}/alarm", json=body)
            assert resp.status_code == 400 and says in resp.json()["message"], resp.text
        bad_json = await svc.client.post(f"{root}/alarm", content=b"{",
                                         headers={"content-type": "application/json"})
        assert bad_json.status_code == 400 and bad_json.json()["@type"] == "Error"
        letters = await published_values(svc.runtime, DEADLETTER)
        assert len(letters) == 4
        for params, says in (({"colour": "red"}, "unknown filter"), ({"alarmReportingTime.gt": "x"}, "ISO")):
            resp = await svc.client.get(f"{root}/alarm", params=params)
            assert resp.status_code == 400 and says in resp.json()["message"]
        for task, body in (("ackAlarms", {}), ("ackAlarms", {"alarmPattern": [{"colour": "red"}]}),
                           ("commentAlarms", {"alarmPattern": [{"id": "x:y"}]})):
            assert (await svc.client.post(f"{root}/{task}", json=body)).status_code == 400
        assert (await svc.client.post(f"{root}/groupAlarms", json={})).status_code == 405
        gone = await svc.client.delete(f"{root}/alarm/nms:1")
        assert gone.status_code == 405 and "alarms are kept" in gone.json()["message"]


async def test_tmf642_alarms_are_the_provinces_not_a_city_operators(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        gz = await bearer(svc.runtime.db, "city-operator", "GZ")
        for method, path, body in (("POST", "/alarm", TMF_ALARM), ("GET", "/alarm", None),
                                   ("POST", "/ackAlarms", {"alarmPattern": [{"id": "a:b"}]})):
            resp = await svc.client.request(method, BASES[0] + path, json=body, headers=gz)
            assert resp.status_code == 403 and resp.json()["@type"] == "Error", (path, resp.text)
        ingest = await bearer(svc.runtime.db, "ingest-only")
        assert (await svc.client.post(BASES[1] + "/alarm", json=TMF_ALARM, headers=ingest)).status_code == 201
        assert (await svc.client.get(BASES[1] + "/alarm", headers=ingest)).status_code == 403
