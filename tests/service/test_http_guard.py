"""HTTP hardening, the same in both modes of the one app (issue 7 part 4; services/http/guard.py):
body size (413), JSON content type (415), no CORS unless configured, paging of every list,
bounded query integers, a dead loop makes /healthz and /readyz 503, slow bodies answered 408,
a dropped request is one log line, /docs works offline, and reads never wait for intake.

"embedded" is `faultline run` (a real services/commands/run.Embedded), "production" is `faultline api`
(services/commands/api.create_api over a RecordingProducer and a migrated SQLite read model);
see service/http_support.py."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import socket
import time
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client import CollectorRegistry

from service.http_support import (
    MODES,
    ServerThread,
    asgi_client,
    embedded_server,
    intake_published,
    kept_refusals,
    one_app,
    production_api,
    production_server,
    raw_request,
    status_of,
)
from service.support import FIBRE_CUT, T0, FakeClock, alarm, live_service
from services.http.app import build_ops_app
from services.http.guard import is_json
from services.http.ops import Ops
from services.runtime.shell import loops_health
from services.settings import HttpLimits, Settings
from shared.rulebook import calendar_notice

SMALL = HttpLimits(max_body_bytes=4096, body_timeout_s=0.5)
JSON = {"content-type": "application/json"}
POST_HEAD = b"POST /alarms HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"


def with_limits(settings, limits: HttpLimits):
    return dataclasses.replace(settings, http=limits)


# ---------------------------------------------------------------------- size and content type

@pytest.mark.parametrize("mode", MODES)
async def test_a_body_over_the_limit_is_413_and_is_never_published(settings, mode):
    async with one_app(mode, with_limits(settings, SMALL), FakeClock(T0 + 5)) as app:
        big = alarm("GZ-OTN-A:1-3-1", "1") | {"text": "x" * 5000}
        resp = await app.client.post("/alarms", json=big)                 # Content-Length: 413 at once
        assert resp.status_code == 413 and "4096 bytes" in resp.json()["detail"]

        async def chunks():                                               # no length: counted as it comes
            for _ in range(100):
                yield b" " * 1000
        resp = await app.client.post("/alarms", content=chunks(), headers=JSON)
        assert resp.status_code == 413
        assert await app.letters() == [] and app.published() == 0
        # Within the limit the same alarm is taken.
        ok = await app.client.post("/alarms", json=alarm("GZ-OTN-A:1-3-1", "2") | {"text": "x" * 3000})
        assert ok.status_code == 202 and app.published() == 1


NOT_JSON = (None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
            "application/jsonp", "application/+json", "text/json")


@pytest.mark.parametrize("mode", MODES)
async def test_a_body_that_is_not_json_by_content_type_is_415(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        for content_type in NOT_JSON:
            headers = {"content-type": content_type} if content_type else {}
            for path in ("/alarms", "/complaints", "/actions", "/tmf-api/alarmManagement/v4/alarm"):
                resp = await app.client.post(path, content=b'{"kind": "ack"}', headers=headers)
                assert resp.status_code == 415, (path, content_type)
                assert "application/json" in resp.json()["detail"]
        assert await app.letters() == [] and app.published() == 0


def test_json_content_types():
    for ok in ("application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json",
               "application/vnd.tmf.alarm+json"):
        assert is_json(ok), ok
    for bad in (None, "", "text/plain", "application/jsonx", "application/+json", "json", "text/json"):
        assert not is_json(bad), bad


@pytest.mark.parametrize("mode", MODES)
async def test_no_cors_unless_origins_are_configured(settings, mode):
    origin = {"origin": "https://evil.example"}
    async with one_app(mode, settings, FakeClock(T0)) as app:
        resp = await app.client.get("/faults", headers=origin)
        assert resp.status_code == 200
        assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
        pre = await app.client.options("/actions", headers=origin | {"access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in pre.headers
    noc = with_limits(settings, HttpLimits(cors_origins=("https://noc.example",)))
    async with one_app(mode, noc, FakeClock(T0)) as app:
        ok = await app.client.get("/faults", headers={"origin": "https://noc.example"})
        assert ok.headers["access-control-allow-origin"] == "https://noc.example"
        other = await app.client.get("/faults", headers=origin)
        assert "access-control-allow-origin" not in other.headers


def test_settings_come_from_the_environment():
    env = {"FAULTLINE_HTTP_MAX_BODY_BYTES": "2048", "FAULTLINE_HTTP_BODY_TIMEOUT_S": "2.5",
           "FAULTLINE_CORS_ORIGINS": "https://a.example, https://b.example,",
           "FAULTLINE_HTTP_MAX_CONNECTIONS": "50"}
    limits = Settings.load(environ=env, command="run").http
    assert (limits.max_body_bytes, limits.body_timeout_s, limits.max_connections) == (2048, 2.5, 50)
    assert limits.cors_origins == ("https://a.example", "https://b.example")
    assert Settings.load(environ={}, command="run").http == HttpLimits() and HttpLimits().cors_origins == ()
    from services.config import UsageError
    for bad in ("0", "-1", "lots", "inf"):
        with pytest.raises(UsageError, match="FAULTLINE_HTTP_MAX_BODY_BYTES"):
            Settings.load(environ={"FAULTLINE_HTTP_MAX_BODY_BYTES": bad}, command="run")


# ---------------------------------------------------------------------- lists and query integers

async def test_faults_and_workorders_come_a_page_at_a_time(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        # Intake publishes; the loops decide later: wait for the three alarms' outcomes.
        taken = await svc.client.post("/alarms", json=FIBRE_CUT, params={"wait_s": 10})
        assert taken.status_code == 202 and taken.json()["pending"] == 0, taken.json()
        everything = (await svc.client.get("/faults")).json()
        assert len(everything) == 4
        first = await svc.client.get("/faults", params={"limit": 3})
        assert [f["fault_id"] for f in first.json()] == [f["fault_id"] for f in everything[:3]]
        assert first.headers["x-result-count"] == "3" and first.headers["x-next-offset"] == "3"
        rest = await svc.client.get("/faults", params={"limit": 3, "offset": first.headers["x-next-offset"]})
        assert rest.json() == everything[3:] and "x-next-offset" not in rest.headers
        gz = await svc.client.get("/faults", params={"city": "GZ", "open": "true", "limit": 2, "offset": 1})
        assert [f["fault_id"] for f in gz.json()] == [f["fault_id"] for f in everything[1:3]]
        assert (await svc.client.get("/faults", params={"offset": 2**63 - 1})).json() == []
        orders = (await svc.client.get("/workorders")).json()
        assert len(orders) >= 2
        one = await svc.client.get("/workorders", params={"limit": 1, "offset": 1})
        assert one.json() == orders[1:2] and one.headers["x-result-count"] == "1"
        for path in ("/faults", "/workorders", "/tmf-api/troubleTicket/v4/troubleTicket"):
            tmf = path.startswith("/tmf-api/")             # TMF630: a bad parameter is 400, an Error
            for bad in ({"limit": 0}, {"limit": 5001}, {"offset": -1}, {"offset": 2**63}, {"limit": "many"}):
                status = (await svc.client.get(path, params=bad)).status_code
                assert status == (400 if tmf else 422), (path, bad)


async def test_decisions_after_seq_beyond_64_bits_is_422_not_500(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        await svc.settle()
        assert (await svc.client.get("/decisions")).json()["decisions"]
        for big in (2**63, 2**64, 10**30):
            assert (await svc.client.get("/decisions", params={"after_seq": big})).status_code == 422
        top = await svc.client.get("/decisions", params={"after_seq": 2**63 - 1})
        assert top.status_code == 200 and top.json()["decisions"] == []


@pytest.mark.parametrize("mode", MODES)
async def test_nul_in_the_path_or_query_is_400(settings, mode):
    async with one_app(mode, settings, FakeClock(T0)) as app:
        assert (await app.client.get("/faults/F-%00")).status_code == 400
        assert (await app.client.get("/faults", params={"city": "G\x00Z"})).status_code == 400
        assert (await app.client.get("/inputs/faultline.alarms:0:0%00@1")).status_code == 400
        assert (await app.client.get("/faults", params={"city": "GZ"})).status_code == 200


# ---------------------------------------------------------------------- bodies of every JSON type

EVERY_TYPE = (b"null", b"true", b"0", b"1.5", b'"ack"', b"[]", b"[null]", b"{}", b'{"kind": null}',
              b'{"kind": ["ack"]}', b'{"kind": {"a": 1}}')


@pytest.mark.parametrize("mode", MODES)
async def test_every_json_type_as_an_action_is_refused_with_a_reason_and_kept(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        answers = []
        for body in EVERY_TYPE:
            resp = await app.client.post("/actions", content=body, headers=JSON)
            assert resp.status_code == 422, (body, resp.status_code, resp.text)
            answer = resp.json()
            assert answer["rejected"] == 1 and answer["reasons"][0]["reason"] == answer["detail"]
            assert answer["input_ids"] == [None] and answer["pending"] == 0     # refused before publishing
            answers.append(answer["detail"])
        assert (await app.client.get("/healthz")).status_code == 200
        kept = await app.letters()
        assert [k["reason"] for k in kept] == answers and app.published() == 0
        assert "null" in kept[0]["reason"] and kept[-1]["body"] == '{"kind":{"a":1}}'


@pytest.mark.parametrize("mode", MODES)
async def test_a_refused_null_body_is_kept_as_null(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        assert (await app.client.post("/actions", content=b"null", headers=JSON)).status_code == 422
        assert [k["body"] for k in await app.letters()] == ["null"]


@pytest.mark.parametrize("mode", MODES)
async def test_an_alarm_list_longer_than_the_cap_is_refused_whole(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        resp = await app.client.post("/alarms", json=[0] * 1001)
        assert resp.status_code == 422 and "at most 1000" in resp.json()["reasons"][0]["reason"]
        assert len(await app.letters()) == 1 and app.published() == 0


# ---------------------------------------------------------------------- health, readiness and the calendar

async def test_healthz_and_readyz_are_503_when_a_loop_of_the_runtime_is_dead(settings):
    async with live_service(settings, FakeClock(T0)) as svc:
        assert (await svc.client.get("/healthz")).status_code == 200
        assert (await svc.client.get("/readyz")).status_code == 200
        correlate = next(t for t in asyncio.all_tasks() if t.get_name() == "correlate")
        correlate.cancel()
        await asyncio.gather(correlate, return_exceptions=True)
        health, ready = await svc.client.get("/healthz"), await svc.client.get("/readyz")
        assert health.status_code == 503 and "correlate" in health.json()["detail"]
        assert ready.status_code == 503 and ready.json()["status"] == "down"
        assert ready.json()["problems"] == [f"down: {health.json()['detail']}"]


async def test_the_production_api_is_alive_but_not_ready_without_its_broker(tmp_path):
    api = await production_api(f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}")
    try:
        async with asgi_client(api.app, api.headers) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = await http.get("/readyz")
    finally:
        await api.engine.dispose()
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    assert ready.json()["problems"] == ["kafka: ConnectionRefusedError"]


async def test_a_process_whose_loop_is_down_is_neither_healthy_nor_ready():
    loop = SimpleNamespace(healthy=True)

    async def reachable() -> list[str]:
        return []
    app = build_ops_app(Ops(CollectorRegistry(), loops_health({"correlate": loop}), reachable), HttpLimits())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
        assert [(await http.get(p)).status_code for p in ("/healthz", "/readyz")] == [200, 200]
        loop.healthy = False
        health, ready = await http.get("/healthz"), await http.get("/readyz")
    assert (health.status_code, ready.status_code) == (503, 503)
    assert health.json()["detail"] == "loop(s) not running: correlate"
    assert ready.json()["problems"] == ["down: loop(s) not running: correlate"]


async def test_a_process_with_a_degraded_shard_is_alive_but_not_ready():
    degraded: list[str] = []

    async def ready() -> list[str]:
        return list(degraded)
    app = build_ops_app(Ops(CollectorRegistry(), lambda: None, ready), HttpLimits())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
        assert (await http.get("/readyz")).status_code == 200
        degraded.append("correlate GZ: a due timer fails; retrying")
        health, ready = await http.get("/healthz"), await http.get("/readyz")
    assert (health.status_code, ready.status_code) == (200, 503)
    assert ready.json()["problems"] == ["correlate GZ: a due timer fails; retrying"]


async def test_the_holiday_calendar_end_is_warned_in_readyz_and_counted_in_a_gauge(settings, caplog):
    ends = settings.rulebook.calendar_ends
    from shared.clock import parse_time
    near = parse_time(f"{ends.isoformat()}T12:00:00+08:00") - 10 * 86400     # 10 days before the end
    clock = FakeClock(T0)
    clock.t = near
    with caplog.at_level(logging.WARNING):
        async with live_service(settings, clock) as svc:
            ready = await svc.client.get("/readyz")
            assert ready.status_code == 200                                 # a warning is not unreadiness
            assert ready.json()["warnings"] == [calendar_notice(settings.rulebook, near)]
            assert ends.isoformat() in ready.json()["warnings"][0]
            assert "faultline_holiday_calendar_days_left 10.0" in (await svc.client.get("/metrics")).text
            clock.jump(20 * 86400)                                          # the gauge follows the clock
            assert "faultline_holiday_calendar_days_left -10.0" in (await svc.client.get("/metrics")).text
    warned = [r for r in caplog.records if "holiday calendar" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    far = FakeClock(near - 365 * 86400)
    async with live_service(settings, far) as svc:
        assert (await svc.client.get("/readyz")).json()["warnings"] == []


# ---------------------------------------------------------------------- slow and vanishing clients

def _partial_post(port: int, sent: int = 10, declared: int = 1000) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(POST_HEAD + b"content-length: %d\r\n\r\n" % declared + b"[" * sent)
    return s


def _no_tracebacks(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]


def test_slow_bodies_are_answered_408_and_do_not_hold_the_server(settings, caplog):
    caplog.set_level(logging.INFO)
    with embedded_server(with_limits(settings, SMALL), FakeClock(T0)) as srv:
        slow = [_partial_post(srv.port) for _ in range(100)]
        started = time.monotonic()
        answers = []
        for s in slow:
            out = b""
            while chunk := s.recv(4096):
                out += chunk
            answers.append(out)
            s.close()
        assert all(status_of(a) == 408 for a in answers), {status_of(a) for a in answers}
        assert time.monotonic() - started < 5                                # 0.5 s each, in parallel
        with httpx.Client(base_url=srv.base_url) as http:
            assert http.get("/healthz").status_code == 200
        assert srv.call(_nothing_taken(srv)) == ([], 0)
    _no_tracebacks(caplog)
    assert len([r for r in caplog.records if "within 0.5s" in r.getMessage()]) == 100


def test_a_client_that_leaves_mid_request_costs_one_log_line(settings, caplog):
    caplog.set_level(logging.INFO)
    with embedded_server(settings, FakeClock(T0)) as srv:
        _partial_post(srv.port).close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("went away" in r.getMessage() for r in caplog.records):
            time.sleep(0.05)
        with httpx.Client(base_url=srv.base_url) as http:
            assert http.get("/healthz").status_code == 200
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 1 and gone[0].name == "faultline.http" and "POST /alarms" in gone[0].getMessage()
    _no_tracebacks(caplog)


def test_a_declared_50_mb_body_is_refused_before_it_is_sent(settings):
    with embedded_server(settings, FakeClock(T0)) as srv:
        started = time.monotonic()
        answer = raw_request(srv.port, POST_HEAD + b"content-length: 52428800\r\n\r\n", b"[")
        assert status_of(answer) == 413 and b"1048576 bytes" in answer
        assert time.monotonic() - started < 5
        # Chunked, 2 MiB in 64 KiB chunks: counted, refused past 1 MiB (the rest read and dropped,
        # so the client, still sending, reads the answer rather than a reset).
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        answer = raw_request(srv.port, POST_HEAD + b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                             chunk * 32 + b"0\r\n\r\n")
        assert status_of(answer) == 413
        assert srv.call(_nothing_taken(srv)) == ([], 0)


async def _nothing_taken(srv: ServerThread) -> tuple[list, int]:
    """What the embedded runtime kept as refused, and how many inputs intake published."""
    assert srv.service is not None
    return await kept_refusals(srv.service), intake_published(srv.service)


@pytest.mark.parametrize("mode", MODES)
async def test_a_body_nested_deeper_than_can_be_stored_is_refused_with_a_reason(settings, mode):
    async with one_app(mode, settings, FakeClock(T0 + 5)) as app:
        for depth in (240, 300, 1000, 2000):
            body = b"[" * depth + b"]" * depth
            resp = await app.client.post("/actions", content=body, headers=JSON)
            assert resp.status_code == 422, depth
            assert "nested deeper" in resp.json()["reasons"][0]["reason"] or depth > 1024
        assert (await app.client.get("/healthz")).status_code == 200
        assert len(await app.letters()) == 4 and app.published() == 0


# ---------------------------------------------------------------------- docs without the internet

EXTERNAL = re.compile(rb"""(?:src|href)\s*=\s*["']?(https?:)?//""", re.I)
ASSET = re.compile(rb"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", re.I)


def _check_offline_docs(client, paths=("/docs", "/redoc")) -> None:
    for path in paths:
        resp = client.get(path)
        assert resp.status_code == 200, path
        html = resp.content
        assert not re.findall(rb"https?://", html), (path, re.findall(rb"https?://[^\"' ]+", html))
        assets = {a.decode() for a in ASSET.findall(html)}
        assert any(a.endswith(".js") for a in assets), assets
        for asset in assets:
            assert asset.startswith("/"), asset
            assert client.get(asset).status_code == 200, asset


def test_docs_load_nothing_from_outside_the_app(settings, tmp_path):
    with embedded_server(settings, FakeClock(T0)) as srv, httpx.Client(base_url=srv.base_url) as http:
        _check_offline_docs(http)
    db = f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}"
    with production_server(db) as srv, httpx.Client(base_url=srv.base_url) as http:
        _check_offline_docs(http)
    # A process's ops app serves no docs at all.
    app = build_ops_app(Ops(CollectorRegistry(), lambda: None, None), HttpLimits())
    assert app.docs_url is None and app.redoc_url is None


# ---------------------------------------------------------------------- the production api's lists

async def test_the_production_api_pages_faults_work_orders_and_trouble_tickets(tmp_path):
    from sqlalchemy import insert

    from shared.db.models import faults, work_orders

    api = await production_api(f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}")
    async with api.engine.begin() as conn:
        await conn.execute(insert(faults), [
            {"fault_id": f"F-GZ-{i:06d}", "city": "GZ", "severity": "general",
             "opened_at": f"2026-11-25T10:{i:02d}:00+08:00"} for i in range(7)])
        await conn.execute(insert(work_orders), [
            {"work_order_id": f"W-GZ-{i:06d}", "queue": "city.GZ.monitoring", "status": "acknowledged",
             "title": "t", "rule": "RT-5", "priority": "normal", "fault_ids": '["F-GZ-000001"]',
             "created_at": f"2026-11-25T10:{i:02d}:00+08:00"} for i in range(5)])
    try:
        async with asgi_client(api.app, api.headers) as http:
            first = await http.get("/faults", params={"limit": 3})
            assert [f["fault_id"] for f in first.json()] == ["F-GZ-000000", "F-GZ-000001", "F-GZ-000002"]
            assert first.headers["x-next-offset"] == "3" and first.headers["x-result-count"] == "3"
            last = await http.get("/faults", params={"limit": 3, "offset": 6})
            assert [f["fault_id"] for f in last.json()] == ["F-GZ-000006"]
            assert "x-next-offset" not in last.headers
            orders = await http.get("/workorders", params={"limit": 2, "offset": 4})
            assert [o["work_order_id"] for o in orders.json()] == ["W-GZ-000004"]
            tickets = await http.get("/tmf-api/troubleTicket/v4/troubleTicket", params={"limit": 2})
            assert [t["id"] for t in tickets.json()] == ["W-GZ-000000", "W-GZ-000001"]
            assert tickets.headers["x-total-count"] == "5" and tickets.headers["x-result-count"] == "2"
            entities = tickets.json()[0]["relatedEntity"]
            assert [(e["id"], e["role"]) for e in entities] == [("F-GZ-000001", "fault")]
            for bad in ({"limit": 5001}, {"offset": 2**63}, {"offset": -1}):
                assert (await http.get("/faults", params=bad)).status_code == 422
            # The same guard as in the embedded mode.
            text = {"content-type": "text/plain"}
            assert (await http.post("/alarms", content=b"{}", headers=text)).status_code == 415
            assert (await http.post("/actions", content=b"null", headers=JSON)).status_code == 422
    finally:
        await api.engine.dispose()


# ---------------------------------------------------------------------- reads never wait for intake

@pytest.mark.parametrize("mode", MODES)
async def test_a_read_is_answered_while_intake_is_in_flight(settings, mode):
    """Successor of the embedded engine's read gate (IntakeFirst: a read waited, at most
    max_wait_s, for intake in flight): reads now come from the database, so however long intake
    takes to publish, and however many bodies wait for a slot, a read does not wait at all."""
    limited = with_limits(settings, HttpLimits(max_decoded_bodies=1))
    async with one_app(mode, limited, FakeClock(T0 + 5)) as app:
        producer, release, held = app.intake_producer, asyncio.Event(), []
        send = producer.send_many

        async def slow(records):
            held.append(len(records))
            await release.wait()
            return await send(records)
        producer.send_many = slow
        posts = [asyncio.create_task(app.client.post("/alarms", json=alarm("GZ-OTN-A:1-3-1", str(i))))
                 for i in range(3)]
        for _ in range(100):                                # (each post first checks its token)
            if held:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert held == [1]                                  # one publishing, two waiting for the slot
        for path in ("/faults", "/workorders", "/decisions", "/tmf-api/troubleTicket/v4/troubleTicket"):
            resp = await asyncio.wait_for(app.client.get(path), 2)
            assert resp.status_code == 200, path
        assert not any(p.done() for p in posts)
        release.set()
        assert [r.status_code for r in await asyncio.gather(*posts)] == [202, 202, 202]
