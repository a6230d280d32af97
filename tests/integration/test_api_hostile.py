"""`faultline api` as a process on Tansu and PostgreSQL against hostile HTTP clients (issue 7
part 4): garbage bodies and parameters get 4xx, never 5xx; oversized, non-JSON and slow bodies
are refused (413, 415, 408); a dropped request is one log line; the lists are paged; and the
processes that load a rulebook report the holiday calendar's end (log, /readyz, gauge)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import socket
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokens import bearer_at

from shared.rulebook import calendar_notice, load_rulebook

from .pipeline_support import Proc, stage_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FAULTLINE_FUZZ_EXAMPLES", "25"))
TMF642 = "/tmf-api/alarmManagement/v4/alarm"
TMF621 = "/tmf-api/troubleTicket/v4/troubleTicket"


def wait_ready(port: int, path: str = "/healthz", timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"no 200 from :{port}{path}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
FIELDS = ("kind", "source", "alarm_id", "resource_id", "probable_cause", "severity", "state", "event_time",
          "complaint_id", "channel", "customer_id", "city", "service_type", "scope", "select", "impact",
          "id", "alarmedObject", "perceivedSeverity", "eventTime", "sourceSystemId", "probableCause")
bodies = st.one_of(st.binary(max_size=200), json_values.map(orjson.dumps),
                   st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8).map(orjson.dumps),
                   st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n))
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", None])
queries = st.dictionaries(st.sampled_from(["city", "severity", "open", "queue", "status", "limit", "offset"]),
                          st.text(max_size=12) | st.integers(min_value=-2**70, max_value=2**70).map(str),
                          max_size=4)


def test_the_production_api_survives_hostile_clients(broker, pg_url, tmp_path):
    env = {**stage_env(broker.bootstrap, pg_url, ROOT / "samples" / "inventory.json"),
           "FAULTLINE_HTTP_BODY_TIMEOUT_S": "1"}
    api = Proc("api", env, tmp_path).start()
    try:
        wait_ready(api.port)
        base = f"http://127.0.0.1:{api.port}"
        asyncio.run(_some_faults(pg_url))
        with httpx.Client(base_url=base, timeout=30, headers=asyncio.run(bearer_at(pg_url))) as http:
            _garbage(http)
            _limits(http, api.port)
            assert http.get("/healthz").status_code == 200
    finally:
        assert api.terminate() == 0
    log = api.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI application" not in log, api.tail(60)
    assert len(re.findall(r"client went away", log)) == 1, api.tail(60)


async def _some_faults(pg_url: str) -> None:
    """Rows in the read model (as the stages would write them), so the lists have pages."""
    from sqlalchemy import insert
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db import database_url
    from shared.db.models import faults

    engine = create_async_engine(database_url(pg_url))
    async with engine.begin() as conn:
        await conn.execute(insert(faults), [{"fault_id": f"F-GZ-{i:06d}", "city": "GZ", "severity": "general",
                                             "opened_at": f"2026-11-25T10:0{i}:00+08:00"} for i in range(3)])
    await engine.dispose()


def _garbage(http: httpx.Client) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(["/alarms", "/complaints", "/actions", TMF642]), body=bodies,
           content_type=content_types)
    def post(path: str, body: bytes, content_type: str | None) -> None:
        headers = {"content-type": content_type} if content_type else {}
        resp = http.post(path, content=body, headers=headers)
        assert resp.status_code < 500, (path, content_type, body[:200], resp.status_code, resp.text[:300])

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(["/faults", "/workorders", TMF621]), params=queries,
           fault_id=st.text(min_size=1, max_size=80))
    def get(path: str, params: dict, fault_id: str) -> None:
        resp = http.get(path, params=params)
        assert resp.status_code < 500, (path, params, resp.status_code, resp.text[:300])
        one = http.get("/faults/" + quote(fault_id, safe=""))
        assert one.status_code < 500, (fault_id, one.status_code, one.text[:300])
    post()
    get()


def _limits(http: httpx.Client, port: int) -> None:
    json_ct = {"content-type": "application/json"}
    text = {"content-type": "text/plain"}
    assert http.post("/alarms", content=b'{"a": 1}', headers=text).status_code == 415
    assert http.post("/actions", content=b"null", headers=json_ct).status_code == 422
    assert http.post("/alarms", content=b"[" + b"0," * 1000 + b"0]", headers=json_ct).status_code == 422
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /alarms HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 52428800\r\n\r\n[")
        assert s.recv(4096).startswith(b"HTTP/1.1 413 ")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:         # slow: 408 after 1 s
        s.sendall(b"POST /alarms HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 100\r\n\r\n[")
        assert s.recv(4096).startswith(b"HTTP/1.1 408 ")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:         # gone: one log line
        s.sendall(b"POST /alarms HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: 100\r\n\r\n[")
    time.sleep(0.5)
    _kafka_sized(http, port)
    for path in ("/faults", "/workorders", TMF621):
        page = http.get(path, params={"limit": 5})
        assert page.status_code == 200 and page.headers["x-result-count"] == str(len(page.json()))
        for bad in ({"limit": 5001}, {"offset": 2**63}, {"limit": 0}):      # TMF630: 400, an Error
            assert http.get(path, params=bad).status_code == (400 if path == TMF621 else 422), (path, bad)
    assert http.get(TMF621).headers["x-total-count"] == "0"
    two = http.get("/faults", params={"limit": 2})
    assert [f["fault_id"] for f in two.json()] == ["F-GZ-000000", "F-GZ-000001"]
    assert two.headers["x-next-offset"] == "2"
    assert [f["fault_id"] for f in http.get("/faults", params={"offset": 2}).json()] == ["F-GZ-000002"]
    assert http.get("/faults", params={"city": "G\x00Z"}).status_code == 400


def _kafka_sized(http: httpx.Client, port: int) -> None:
    """Bodies within the 1 MiB limit whose record or dead letter aiokafka would refuse (over its
    1 MiB max_request_size) are refused or cut, never a 500; connections that never complete a
    request head, or send a body with a GET, are closed."""
    json_ct = {"content-type": "application/json"}
    for path, body in (("/alarms", b"\xff" * 400_000), ("/alarms", b"\x01" * 200_000),
                       ("/complaints", b'{"text":"' + b"b" * (1024 * 1024 - 11) + b'"}')):
        resp = http.post(path, content=body, headers=json_ct)
        assert resp.status_code == 422, (path, resp.status_code, resp.text[:200])
    tmf = {"id": "T-1", "alarmedObject": {"id": "GZ-OTN-A:1-3-1"}, "probableCause": "LOS",
           "perceivedSeverity": "critical", "state": "raised", "eventTime": "2026-11-25T10:00:00+08:00",
           "alarmDetails": "d" * (1024 * 1024 - 300)}
    resp = http.post(TMF642, content=orjson.dumps(tmf), headers=json_ct)
    assert resp.status_code == 413 and "fit a message" in resp.json()["detail"], resp.text[:200]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent, \
            socket.create_connection(("127.0.0.1", port), timeout=10) as partial:
        partial.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        assert silent.recv(4096) == b"" and partial.recv(4096) == b""      # closed at the 1 s deadline
        assert time.monotonic() - started < 5
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n0123456789")
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")


def test_a_process_with_a_rulebook_reports_the_holiday_calendar_end(broker, pg_url, tmp_path):
    env = stage_env(broker.bootstrap, pg_url, ROOT / "samples" / "inventory.json")
    proc = Proc("dispatch", env, tmp_path).start()
    try:
        wait_ready(proc.port)
        rulebook = load_rulebook()
        notice = calendar_notice(rulebook, time.time())
        ready = httpx.get(f"http://127.0.0.1:{proc.port}/readyz", timeout=10)
        assert ready.json()["warnings"] == ([notice] if notice else [])
        metrics = httpx.get(f"http://127.0.0.1:{proc.port}/metrics", timeout=10).text
        days = re.search(r"^faultline_holiday_calendar_days_left ([-0-9.e+]+)$", metrics, re.M)
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))   # Asia/Shanghai
        assert days and float(days.group(1)) == (rulebook.calendar_ends - dt.date.fromisoformat(today)).days
    finally:
        assert proc.terminate() == 0
    log = proc.log_path.read_text(errors="replace")
    assert log.count("holiday calendar of rulebook") == (1 if notice else 0), proc.tail(30)
