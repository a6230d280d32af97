"""Operations endpoints: health, readiness, Prometheus metrics, the OpenAPI page; database URLs."""

from __future__ import annotations

from pathlib import Path

from service.support import (
    FIBRE_CUT,
    T0,
    WAIT,
    FakeClock,
    alarm,
    end_loop,
    live_service,
    log_entries,
    status_is,
    until,
)
from shared.db import database_url

METRIC_NAMES = ("faultline_alarms_total", "faultline_inputs_rejected_total", "faultline_records_total",
                "faultline_faults_open", "faultline_work_orders_total", "faultline_deadlines_missed_total",
                "faultline_engine_seconds", "faultline_api_inputs_total", "faultline_consumer_lag",
                "faultline_holiday_calendar_days_left")


async def test_metrics_expose_the_faultline_names_with_bounded_labels(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        assert (await svc.client.post("/alarms", json=alarm("X", "1") | {"state": "gone"})).status_code == 422
        resolve = {"kind": "resolve", "select": {"circuit_id": "GZ-INT-0001"}}       # CL-4: refused
        assert (await svc.client.post("/actions", json=resolve, params=WAIT)).status_code == 422
        await svc.settle()
        text = (await svc.client.get("/metrics")).text
    for name in METRIC_NAMES:
        assert name in text, name
    assert "faultline_alarms_total 3.0" in text
    # Refused at the door (decoding) is the api's count; refused by the rules, the stage's.
    assert 'faultline_api_inputs_total{kind="alarm",outcome="refused"} 1.0' in text
    assert 'faultline_api_inputs_total{kind="alarm",outcome="accepted"} 3.0' in text
    assert 'faultline_inputs_rejected_total{source="correlate"} 1.0' in text
    assert 'faultline_records_total{type="fault.opened"} 4.0' in text
    assert 'faultline_faults_open{city="GZ",severity="general"} 4.0' in text
    assert 'faultline_work_orders_total{queue="prov.specialist.transmission"} 1.0' in text
    assert 'faultline_engine_seconds_count{step="correlate"}' in text
    assert "F-GZ-000001" not in text and "W-GZ-000001" not in text and "GZ-INT-0001" not in text


async def test_health_and_readiness(settings):
    """/healthz: every loop of the runtime runs; a loop that ended makes it 503 and says which.
    Intake does not depend on the loops: an alarm sent meanwhile is kept on the topic and
    handled once the loops run again (here, after a restart on the same database)."""
    async with live_service(settings, FakeClock(T0)) as svc:
        assert (await svc.client.get("/healthz")).json() == {"status": "ok"}
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.json()["warnings"]                     # the holiday calendar ends in 2026
        paths = (await svc.client.get("/openapi.json")).json()["paths"]
        assert {"/alarms", "/complaints", "/actions", "/faults", "/workorders", "/decisions",
                "/inputs/{input_id}"} <= set(paths)
        await end_loop(svc.runtime, "correlate")
        health = await svc.client.get("/healthz")
        assert health.status_code == 503 and "correlate" in health.json()["detail"]
        ready = await svc.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "down"
        resp = await svc.client.post("/alarms", json=FIBRE_CUT, params={"wait_s": 0.3})
        assert resp.status_code == 202 and resp.json()["pending"] == 3
        ids = resp.json()["input_ids"]
    async with live_service(settings, FakeClock(T0)) as svc:
        outcomes = [(await svc.client.get(f"/inputs/{i}", params=WAIT)).json()["status"] for i in ids]
        assert outcomes == ["accepted"] * 3
        assert len(await log_entries(svc.runtime, "correlate")) == 3
        await until(lambda: status_is(svc.client, "/healthz", 200), what="healthz 200")


def test_database_urls(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAULTLINE_DATABASE_URL", raising=False)
    assert database_url(None) == "sqlite+aiosqlite:///.faultline/faultline.sqlite3"
    assert (tmp_path / ".faultline").is_dir()
    assert database_url("postgresql://u@db:5432/f") == "postgresql+asyncpg://u@db:5432/f"
    assert database_url("postgresql+asyncpg://u@db/f") == "postgresql+asyncpg://u@db/f"
    assert database_url("sqlite:///x/y.db") == "sqlite+aiosqlite:///x/y.db"
    assert (tmp_path / "x").is_dir()
