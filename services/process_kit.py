"""The shell every production process shares (CONTRACT §4): its settings, read once when it
starts; its ops port (/healthz, /readyz, /metrics) behind the HTTP guard; readiness checks;
the database's migrations and the topics it needs, made before it starts; and the stop on
SIGTERM, with a watchdog for a drain that cannot finish. The composition roots are in
services/processes.py (correlate, dispatch), ingest_process.py and api_process.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field, replace

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.config import UsageError
from services.http_guard import HttpLimits, harden, new_app, uvicorn_config
from services.metrics import Warnings
from shared.db import database_url
from shared.db.migrate import upgrade_async
from shared.kafka import KafkaConfig, ensure_topics

log = logging.getLogger("faultline")

CLOCKS = ("wall", "stream")


@dataclass(frozen=True)
class ProcessSettings:
    kafka: KafkaConfig
    database_url: str
    inventory_path: str | None
    rulebook_path: str | None
    http_port: int
    clock: str                 # wall: timers on the wall clock; stream: only message time moves it
    arrival_hold_s: float = 0.3  # how late a message may reach the broker and still be put in time order
    http: HttpLimits = field(default_factory=HttpLimits)   # FAULTLINE_HTTP_*, FAULTLINE_CORS_ORIGINS
    drain_s: float = 30.0      # FAULTLINE_DRAIN_SECONDS: after SIGTERM, the longest a drain may take

    @classmethod
    def from_args(cls, args) -> ProcessSettings:
        env = os.environ
        bootstrap = args.kafka_bootstrap or env.get("FAULTLINE_KAFKA_BOOTSTRAP")
        if not bootstrap:
            raise UsageError("--kafka-bootstrap / FAULTLINE_KAFKA_BOOTSTRAP: required by this process "
                             "(without Kafka, run `faultline run`)")
        kafka = replace(KafkaConfig.from_env({**env, "FAULTLINE_KAFKA_BOOTSTRAP": bootstrap}))
        clock = args.clock or env.get("FAULTLINE_CLOCK", "wall")
        if clock not in CLOCKS:
            raise UsageError(f"--clock / FAULTLINE_CLOCK: {clock!r} is not one of {', '.join(CLOCKS)}")
        hold = getattr(args, "arrival_hold_ms", None) or env.get("FAULTLINE_ARRIVAL_HOLD_MS", "300")
        try:
            hold_s = int(hold) / 1000
        except ValueError:
            hold_s = -1
        if hold_s < 0:
            raise UsageError(f"--arrival-hold-ms / FAULTLINE_ARRIVAL_HOLD_MS: {hold!r} is not a whole "
                             "number of milliseconds >= 0")
        drain = env.get("FAULTLINE_DRAIN_SECONDS", "30")
        try:
            drain_s = float(drain)
        except ValueError:
            drain_s = -1.0
        if not 0 < drain_s < 86400:
            raise UsageError(f"FAULTLINE_DRAIN_SECONDS: {drain!r} is not a number of seconds > 0")
        return cls(kafka, database_url(args.database_url), args.inventory, args.rulebook,
                   args.http_port, clock, hold_s, HttpLimits.from_env(env), drain_s)


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


async def serve_until_stopped(app: FastAPI, port: int, stop: asyncio.Event, limits: HttpLimits) -> None:
    # Production processes run in containers, where the scraper and probes come from outside.
    config = uvicorn_config(app, os.environ.get("FAULTLINE_HTTP_HOST", "0.0.0.0"), port,
                            limits, log_level="warning", lifespan="off")
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


async def prepare(settings: ProcessSettings, topics: dict[str, int]) -> AsyncEngine:
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
