"""The shell every production process shares (CONTRACT §4): its settings (services/settings.py),
read once when it starts; its ops port (/healthz, /readyz, /metrics) behind the HTTP guard;
readiness checks; the database's migrations and the topics it needs, made before it starts;
and the stop on SIGTERM, with a watchdog for a drain that cannot finish. The composition
roots are in services/processes.py (correlate, dispatch), ingest_process.py and api_process.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.http_guard import HttpLimits, harden, new_app, uvicorn_config
from services.metrics import Warnings
from services.settings import Settings
from shared.db.migrate import upgrade_async
from shared.kafka import KafkaConfig, ensure_topics

log = logging.getLogger("faultline")


def ops_app(health, ready, registry: CollectorRegistry, warnings: Warnings | None = None, *,
            limits: HttpLimits) -> FastAPI:
    """A process's own HTTP app: nothing but ops_router, behind the same guard as the api
    (`limits`: the process's settings.http, read from the environment once, at start)."""
    app = new_app(docs=False, title="faultline process")
    app.include_router(ops_router(health, ready, registry, warnings))
    return harden(app, limits)


def ops_router(health, ready, registry: CollectorRegistry, warnings: Warnings | None = None) -> APIRouter:
    """/healthz (the loop runs), /readyz (broker and database reachable; `warnings` such as the
    holiday calendar's end are listed but never make the process unready), /metrics."""
    app = APIRouter()

    @app.get("/healthz")
    async def healthz(response: Response):
        ok = health()
        response.status_code = 200 if ok else 503
        return {"status": "ok" if ok else "down"}

    @app.get("/readyz")
    async def readyz(response: Response):
        # A process whose loop is down or crash-looping is not ready either, whatever it reaches.
        problems = ([] if health() else ["loop: down (see /healthz and the log)"]) + await ready()
        response.status_code = 200 if not problems else 503
        return {"status": "ready" if not problems else "not ready", "problems": problems,
                "warnings": warnings() if warnings is not None else []}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def with_degraded(degraded: list[str], reachable) -> list[str]:
    """/readyz problems: the process's degraded parts (shards whose timers fail), then what
    it cannot reach."""
    return degraded + await reachable


async def readiness(engine: AsyncEngine, kafka: KafkaConfig) -> list[str]:
    problems = []
    try:
        async with engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("select 1")), 3)
    except Exception as err:                       # any failure means "not ready", with its reason
        problems.append(f"database: {type(err).__name__}")
    try:
        host, _, port = kafka.bootstrap.split(",")[0].rpartition(":")
        _r, w = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), 3)
        w.close()
    except Exception as err:
        problems.append(f"kafka: {type(err).__name__}")
    return problems


async def serve_until_stopped(app: FastAPI, port: int, stop: asyncio.Event, limits: HttpLimits,
                              host: str | None = None) -> None:
    """Serve `app` on the process's settings.http_host and http_port until `stop`. A caller
    that does not pass `host` yet gets FAULTLINE_HTTP_HOST through the settings, as before."""
    if host is None:
        host = Settings.load(command="serve").http_host      # a production process: 0.0.0.0 unset
    config = uvicorn_config(app, host, port, limits, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None       # SIGTERM is ours: drain, then stop
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


def install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def prepare(settings: Settings, topics: dict[str, int]) -> AsyncEngine:
    await upgrade_async(settings.database_url)
    await ensure_topics(settings.kafka, topics, deadline_s=None)
    return create_async_engine(settings.database_url, pool_pre_ping=True)


async def watchdog(stop: asyncio.Event, drain_s: float) -> None:
    """After SIGTERM, a drain that cannot finish (a broker gone for good) must not hold the
    process: everything handled is already durable, so exiting loses nothing."""
    await stop.wait()
    await asyncio.sleep(drain_s)
    log.error("drain did not finish in %.0fs; exiting", drain_s)
    logging.shutdown()
    os._exit(3)


# The settings of every command live in services/settings.py; this name stays until the
# modules that import it from here are switched.
ProcessSettings = Settings
