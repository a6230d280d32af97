"""Bearer tokens on the one app, both modes (issue 10, security; services/http/auth.py): no
token, a bad one or a revoked one is 401; a role that may not is 403; a city operator sees and
changes only its own city's faults and queues; `faultline run` makes an admin token on its
first start and prints it once."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import httpx
import pytest
from api_routes import ROUTES
from tokens import bearer

from service.http_support import MODES, one_app
from service.support import ROOT, T0, FakeClock, alarm, until_healthy
from services.access import ACT, ADMIN, INGEST, READ, TokenStore
from services.http.alarms642 import BASES
from services.http.face import TMF621, TMF621_BASE

ACTION = {"kind": "resolve", "select": {"circuit_id": "GZ-INT-0001"}}
COMPLAINT = {"complaint_id": "CSP-1", "channel": "10086-8", "customer_id": "C-FS-017", "city": "FS",
             "service_type": "internet", "scope": "all_users", "text": "全部无法上网"}
TMF_ALARM = {"alarmType": "communicationsAlarm", "perceivedSeverity": "critical", "probableCause": "LOS",
             "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "sourceSystemId": "nms", "state": "raised",
             "alarmRaisedTime": "2026-11-25T10:00:00+08:00"}
OPEN = ["/healthz", "/metrics", "/openapi.json", "/docs", "/wall"]


async def _call(app, method: str, path: str, body, headers: dict[str, str] | None):
    return await app.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("mode", MODES)
async def test_without_a_token_every_call_but_health_metrics_and_docs_is_refused_401(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        app.client.headers.pop("authorization")
        for method, _template, path, body, _permission in GUARDED:
            resp = await _call(app, method, path, body, None)
            assert resp.status_code == 401, (path, resp.status_code, resp.text)
            assert resp.headers["www-authenticate"] == "Bearer"
            assert "bearer token is required" in resp.json()["detail"]
        for path in OPEN:
            assert (await app.client.get(path)).status_code == 200, path
        assert app.published() == 0                       # nothing reached the bus


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer fl_nope",
                                    "bearer " + "x" * 5000, "Bearer fl_" + "A" * 43, "Token fl_" + "A" * 43])
async def test_a_bad_or_made_up_token_is_refused_401_and_never_echoed(settings, mode, header):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        resp = await _call(app, "POST", "/alarms", alarm("GZ-OTN-A:1-3-1", "a1"), {"Authorization": header})
        assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
        assert header.split()[-1] not in resp.text or header.split()[-1] in ("Bearer",)


@pytest.mark.parametrize("mode", MODES)
async def test_a_revoked_token_stops_working(settings, mode, monkeypatch):
    monkeypatch.setattr("services.http.auth.CACHE_S", 0.0)      # (the app keeps a holder for 5 s)
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        store = TokenStore(app.engine)
        token_id, token = await store.create("read-only")
        headers = {"Authorization": f"Bearer {token}"}
        assert (await _call(app, "GET", "/faults", None, headers)).status_code == 200
        assert await store.revoke(token_id)
        resp = await _call(app, "GET", "/faults", None, headers)
        assert resp.status_code == 401 and "unknown or revoked" in resp.json()["detail"]


# Every guarded operation of the app: (method, path template, a concrete call, body, the
# permission it needs). The templates are exactly tests/api_routes.ROUTES less the open ops.
TICKET, ALARM_REF = f"{TMF621}/W-GZ-000001", "gd-otn-nms-1:a1"
PATTERN = {"alarmPattern": [{"id": ALARM_REF}]}
GUARDED = [
    ("POST", "/alarms", "/alarms", alarm("GZ-OTN-A:1-3-1", "a1"), INGEST),
    ("GET", "/wall/summary", "/wall/summary", None, READ),
    ("POST", "/alarms/import", "/alarms/import", {"mapping": "sdh-otn-export", "rows": [
        {"Log Serial Number": "1", "Name": "R_LOS", "Alarm Source": "GZ-OTN-A", "Location Info": "1-3-1",
         "Occurrence Time": "2026-11-25 10:00:00"}]}, INGEST),
    ("POST", "/complaints", "/complaints", COMPLAINT, INGEST),
    ("POST", "/actions", "/actions", ACTION, ACT),
    ("GET", "/faults", "/faults", None, READ),
    ("GET", "/faults/{fault_id}", "/faults/F-GZ-000001", None, READ),
    ("GET", "/faults/{fault_id}/detail", "/faults/F-GZ-000001/detail", None, READ),
    ("GET", "/faults/{fault_id}/report", "/faults/F-GZ-000001/report", None, READ),
    ("GET", "/workorders", "/workorders", None, READ),
    ("GET", "/workorders/{work_order_id}", "/workorders/W-GZ-000001", None, READ),
    ("GET", "/decisions", "/decisions", None, READ),
    ("GET", "/inputs/{input_id}", "/inputs/faultline.alarms:0:1@1", None, READ),
    ("GET", "/audit", "/audit", None, ADMIN),
    ("POST", "/inventory", "/inventory", {"customers": "not a list"}, ADMIN),
    ("GET", "/inventory", "/inventory", None, READ),
    *(("GET", f"/inventory/{kind}s", f"/inventory/{kind}s", None, READ)
      for kind in ("customer", "circuit", "resource")),
    *(("GET", f"/inventory/{kind}s/{{{kind}_id}}", f"/inventory/{kind}s/X-1", None, READ)
      for kind in ("customer", "circuit", "resource")),
    ("GET", TMF621, TMF621, None, READ),
    ("POST", TMF621, TMF621, {"description": "d", "severity": "s", "ticketType": "t"}, READ),
    ("GET", f"{TMF621}/{{ticket_id}}", TICKET, None, READ),
    ("PATCH", f"{TMF621}/{{ticket_id}}", TICKET, {"status": "held"}, ACT),
    ("DELETE", f"{TMF621}/{{ticket_id}}", TICKET, None, READ),
    *((method, f"{root}/hub{tail}", f"{root}/hub{call}", body, READ)
      for root in ("", TMF621_BASE)
      for method, tail, call, body in (("POST", "", "", {"callback": "http://127.0.0.1:9/listener"}),
                                       ("GET", "/{id}", "/999", None), ("DELETE", "/{id}", "/999", None))),
    *((method, f"{root}{tail}", f"{root}{call}", body, permission)
      for root in BASES
      for method, tail, call, body, permission in (
          ("POST", "/alarm", "/alarm", TMF_ALARM, INGEST), ("GET", "/alarm", "/alarm", None, READ),
          ("GET", "/alarm/{alarm_id}", f"/alarm/{ALARM_REF}", None, READ),
          ("PATCH", "/alarm/{alarm_id}", f"/alarm/{ALARM_REF}", {"ackState": "acknowledged"}, ACT),
          ("DELETE", "/alarm/{alarm_id}", f"/alarm/{ALARM_REF}", None, READ),
          *(("POST", f"/{task}", f"/{task}", PATTERN, ACT)
            for task in ("ackAlarms", "unAckAlarms", "clearAlarms")),
          ("POST", "/commentAlarms", "/commentAlarms", {**PATTERN, "comment": [{"comment": "c"}]}, ACT),
          ("POST", "/groupAlarms", "/groupAlarms", {}, READ),
          ("POST", "/unGroupAlarms", "/unGroupAlarms", {}, READ))),
]
GRANTS = {"admin": {READ, INGEST, ACT, ADMIN}, "province-operator": {READ, INGEST, ACT},
          "read-only": {READ}, "ingest-only": {INGEST}}


def test_the_permission_table_covers_every_guarded_operation():
    unguarded = ("/healthz", "/readyz", "/wall", "/metrics")
    assert {(m, t) for m, t, _c, _b, _p in GUARDED} == ROUTES - {("GET", p) for p in unguarded}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("role", sorted(GRANTS))
async def test_each_role_may_call_exactly_its_endpoints(settings, mode, role):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        headers = await bearer(app.engine, role)
        for method, template, path, body, permission in GUARDED:
            resp = await app.client.request(method, path, json=body, headers=headers,
                                            params={"wait_s": 0} if method == "PATCH" else None)
            if permission in GRANTS[role]:
                assert resp.status_code not in (401, 403), (role, template, resp.status_code, resp.text)
            else:
                assert resp.status_code == 403, (role, template, resp.status_code, resp.text)
                assert f"role {role} may not" in resp.json()["detail"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_city_operator_may_read_and_act_but_not_on_the_provinces_alarms_or_audit(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        gz = await bearer(app.engine, "city-operator", "GZ")
        for method, template, path, body, _permission in GUARDED:
            resp = await app.client.request(method, path, json=body, headers=gz,
                                            params={"wait_s": 0} if method == "PATCH" else None)
            province = template.startswith(BASES) and not (template.endswith(("groupAlarms", "GroupAlarms"))
                                                            or method == "DELETE")
            provinces = ("/alarms", "/alarms/import", "/audit", "/decisions")
            if province or template in provinces or (method, template) == ("POST", "/inventory"):
                assert resp.status_code == 403, (template, resp.status_code, resp.text)
            else:
                assert resp.status_code not in (401, 403) or "this token is GZ's" in resp.text, (
                    template, resp.status_code, resp.text)


async def test_a_city_operator_sees_and_changes_only_its_city(settings):
    async with one_app("embedded", settings, FakeClock(T0 + 5)) as app:
        # a fault in GZ (GZ-INT-0001 over GZ-CPE-0001) and one in FS, and their orders
        for res, aid in (("GZ-CPE-0001", "g1"), ("FS-CPE-0017", "f1")):
            assert (await app.client.post("/alarms", json=alarm(res, aid))).status_code == 202
        await app.settle()
        faults = (await app.client.get("/faults")).json()
        by_city = {f["city"]: f["fault_id"] for f in faults}
        assert {"GZ", "FS"} <= set(by_city)
        gz = await bearer(app.engine, "city-operator", "GZ")

        mine = (await _call(app, "GET", "/faults", None, gz)).json()
        assert mine and {f["city"] for f in mine} == {"GZ"}
        assert (await _call(app, "GET", "/faults?city=FS", None, gz)).status_code == 403
        assert (await _call(app, "GET", f"/faults/{by_city['GZ']}", None, gz)).status_code == 200
        other = await _call(app, "GET", f"/faults/{by_city['FS']}", None, gz)
        assert other.status_code == 403 and "this token is GZ's" in other.json()["detail"]
        orders = (await _call(app, "GET", "/workorders", None, gz)).json()
        assert orders and all(o["queue"].startswith("city.GZ.") for o in orders)
        everyone = (await app.client.get("/workorders")).json()
        assert len(everyone) > len(orders)
        tickets = await _call(app, "GET", TMF621, None, gz)
        assert tickets.status_code == 200 and int(tickets.headers["x-total-count"]) == len(orders)
        assert (await _call(app, "GET", "/decisions", None, gz)).status_code == 403

        ack = {"kind": "ack", "queue": "city.GZ.monitoring"}
        ok = await _call(app, "POST", "/actions", {**ack, "select": {"fault_id": by_city["GZ"]}}, gz)
        assert ok.status_code == 202, ok.text
        for select in ({"fault_id": by_city["FS"]}, {"circuit_id": "FS-INT-0017"},
                       {"city": "FS", "service_type": "internet"},
                       {"customer_id": "C-FS-017", "service_type": "internet"}):
            refused = await _call(app, "POST", "/actions", {**ack, "select": select}, gz)
            assert refused.status_code == 403, (select, refused.text)
        assert (await _call(app, "POST", "/complaints", COMPLAINT, gz)).status_code == 403
        gz_complaint = {**COMPLAINT, "complaint_id": "CSP-2", "customer_id": "C-GZ-0101", "city": "GZ"}
        assert (await _call(app, "POST", "/complaints", gz_complaint, gz)).status_code == 202
        assert (await _call(app, "POST", "/alarms", alarm("GZ-CPE-0002", "g2"), gz)).status_code == 403


@pytest.mark.parametrize("mode", MODES)
async def test_every_accepted_change_is_in_the_audit_trail_with_who_what_when(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        feed = await bearer(app.engine, "ingest-only")
        two = [alarm("GZ-OTN-A:1-3-1", "a1"), alarm("GZ-CPE-0001", "a2")]
        posted = await _call(app, "POST", "/alarms", two, feed)
        acted = await _call(app, "POST", "/actions", ACTION, None)           # the client's admin token
        refused = await _call(app, "POST", "/actions", {"kind": "resolve", "select": {}}, None)
        forbidden = await _call(app, "POST", "/actions", ACTION, feed)
        assert (posted.status_code, acted.status_code, refused.status_code, forbidden.status_code) == \
            (202, 202, 422, 403)
        trail = (await app.client.get("/audit")).json()
        changes = trail["changes"]
        assert [(c["action"], c["role"], c["actor"], c["inputs"]) for c in changes] == [
            ("POST /alarms", "ingest-only", "tests: ingest-only", 2),
            ("POST /actions", "admin", "tests: admin", 1)]            # not the refusal nor the 403
        assert changes[0]["detail"]["input_ids"] == posted.json()["input_ids"]
        assert changes[1]["detail"]["input_ids"] == acted.json()["input_ids"]
        assert all(c["token_id"] and c["at"] > 0 for c in changes)
        later = (await app.client.get("/audit", params={"after_id": trail["last_id"]})).json()
        assert later == {"changes": [], "last_id": trail["last_id"]}


async def test_a_change_whose_audit_row_cannot_be_written_is_still_answered_and_the_gap_said(
        settings, monkeypatch, caplog):
    """The inputs are published before the row is written: a 503 then would make the sender post
    them again, so the gap is logged (never the token) and counted instead."""
    from sqlalchemy.exc import OperationalError

    from services.access import AuditTrail

    async def down(self, *args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("database is locked"))
    async with one_app("embedded", settings, FakeClock(T0 + 5)) as app:
        monkeypatch.setattr(AuditTrail, "record", down)
        token = app.client.headers["authorization"].split()[-1]
        resp = await app.client.post("/alarms", json=alarm("GZ-OTN-A:1-3-1", "a1"))
        assert resp.status_code == 202
        said = [r.getMessage() for r in caplog.records if "audit trail: not kept" in r.getMessage()]
        assert len(said) == 1 and "POST /alarms" in said[0] and resp.json()["input_ids"][0] in said[0]
        assert token not in caplog.text
        metrics = (await app.client.get("/metrics")).text
        assert 'faultline_api_inputs_total{kind="audit",outcome="not_kept"} 1.0' in metrics


async def test_faultline_run_makes_an_admin_token_on_its_first_start_and_prints_it_once(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FAULTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'first.sqlite3'}",
           "FAULTLINE_HTTP_PORT": str(port)}
    command = [sys.executable, "-m", "services.cli", "run",
               "--inventory", str(ROOT / "samples" / "inventory.json")]

    async def start_and_stop() -> tuple[str, str]:
        proc = await asyncio.create_subprocess_exec(*command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await until_healthy(http)
        proc.terminate()
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return out.decode(), err.decode()

    first_out, first_err = await start_and_stop()
    token = first_out.strip()
    assert first_out == token + "\n" and token.startswith("fl_"), (first_out, first_err[-2000:])
    assert "made admin token 1, shown once" in first_err and token not in first_err
    second_out, second_err = await start_and_stop()
    assert second_out == "" and "made admin token" not in second_err       # once
