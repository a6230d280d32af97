"""Operations endpoints: health, readiness, Prometheus metrics, the OpenAPI page; database URLs."""

from __future__ import annotations

from pathlib import Path

from service.support import FIBRE_CUT, T0, FakeClock, alarm, live_service
from shared.db import database_url

METRIC_NAMES = ("faultline_alarms_total", "faultline_inputs_rejected_total", "faultline_records_total",
                "faultline_faults_open", "faultline_work_orders_total", "faultline_deadlines_missed_total",
                "faultline_engine_seconds")


async def test_metrics_expose_the_faultline_names_with_bounded_labels(settings):
    async with live_service(settings, FakeClock(T0 + 5)) as svc:
        await svc.client.post("/alarms", json=FIBRE_CUT)
        await svc.client.post("/alarms", json=alarm("X", "1") | {"state": "gone"})
        text = (await svc.client.get("/metrics")).text
    for name in METRIC_NAMES:
        assert name in text, name
    assert "faultline_alarms_total 3.0" in text
    assert 'faultline_inputs_rejected_total{source="http"} 1.0' in text
    assert 'faultline_records_total{type="fault.opened"} 4.0' in text
    assert 'faultline_faults_open{city="GZ",severity="general"} 4.0' in text
    assert 'faultline_work_orders_total{queue="prov.specialist.transmission"} 1.0' in text
    assert "F-000001" not in text and "W-000001" not in text


async def test_health_and_readiness(settings):
    async with live_service(settings, FakeClock(T0)) as svc:
        assert (await svc.client.get("/healthz")).status_code == 200
        assert (await svc.client.get("/readyz")).status_code == 200
        paths = (await svc.client.get("/openapi.json")).json()["paths"]
        assert {"/alarms", "/complaints", "/actions", "/faults", "/workorders", "/decisions"} <= set(paths)
        await svc.runtime.engine.stop()
        assert (await svc.client.get("/healthz")).status_code == 503
        assert (await svc.client.post("/alarms", json=FIBRE_CUT)).status_code == 503


def test_database_urls(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAULTLINE_DATABASE_URL", raising=False)
    assert database_url(None) == "sqlite+aiosqlite:///.faultline/faultline.sqlite3"
    assert (tmp_path / ".faultline").is_dir()
    assert database_url("postgresql://u@db:5432/f") == "postgresql+asyncpg://u@db:5432/f"
    assert database_url("postgresql+asyncpg://u@db/f") == "postgresql+asyncpg://u@db/f"
    assert database_url("sqlite:///x/y.db") == "sqlite+aiosqlite:///x/y.db"
    assert (tmp_path / "x").is_dir()
