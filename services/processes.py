"""Composition roots of the production processes (CONTRACT §4): `faultline ingest`,
`faultline correlate`, `faultline dispatch`, `faultline api`. Each builds its adapters
when it runs — never at import — serves /healthz, /readyz and /metrics on
FAULTLINE_HTTP_PORT, and drains on SIGTERM: the current batch is finished, stored,
published and committed before the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass, field, replace

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.config import UsageError, load_config
from services.http_guard import HttpLimits, harden, new_app, uvicorn_config
from services.metrics import EngineMetrics, OpenFaultsCollector, Warnings, calendar_watch
from shared.db import database_url
from shared.db.migrate import upgrade_async
from shared.kafka import KafkaConfig, Producer, ensure_topics
from shared.timers import LIVE_CATCH_UP_S

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


async def _with(degraded: list[str], reachable) -> list[str]:
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


def _lag_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge("faultline_consumer_lag", "Messages not yet consumed, by topic", ["topic"],
                 registry=registry)


# ---------------------------------------------------------------------- correlate

async def correlate(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.kafka_stages import CorrelateLogic
    from services.router_runner import RouterRunner
    from services.shard_runner import ShardRunner
    from services.shardlog import ShardLog
    from shared.topics import ACTIONS, ALARMS, CORRELATOR_INPUTS, DEADLETTER, DECISIONS, FAULTS

    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    n = settings.kafka.partitions
    engine = await prepare(settings, {t: n for t in (ALARMS, ACTIONS, CORRELATOR_INPUTS, FAULTS,
                                                     DECISIONS, DEADLETTER)})
    producer = Producer(settings.kafka)
    await producer.start(deadline_s=None)
    registry = CollectorRegistry()
    lag = _lag_gauge(registry)
    router = RouterRunner(inventory, settings.kafka, producer, hold_s=settings.arrival_hold_s)
    late = Counter("faultline_router_late_messages", "Messages that reached the broker more than "
                   "FAULTLINE_ARRIVAL_HOLD_MS after later ones (handled in arrival order)", registry=registry)
    shards = ShardRunner(CorrelateLogic(inventory, rulebook), ShardLog(engine, "correlate"), settings.kafka,
                         producer, group_id="faultline-correlate", input_partitions=n,
                         wall_clock=time.time if settings.clock == "wall" else None,
                         metrics=EngineMetrics(registry))
    registry.register(OpenFaultsCollector(
        lambda: [f for st in list(shards.shards.values()) for f in st.core.correlator.open_faults.values()]))
    app = ops_app(lambda: router.healthy and shards.healthy,
                  lambda: _with(shards.degraded, readiness(engine, settings.kafka)), registry,
                  calendar_watch(rulebook, registry, time.time), limits=settings.http)

    async def lag_loop():
        counted = 0
        while not stop.is_set():
            for topic in (ALARMS, ACTIONS):
                lag.labels(topic).set(sum(v for (t, _p), v in router.lag.items() if t == topic))
            late.inc(router.late - counted)
            counted = router.late
            await asyncio.sleep(5)

    try:
        await asyncio.gather(router.run(stop), shards.run(stop), lag_loop(),
                             serve_until_stopped(app, settings.http_port, stop, settings.http))
    finally:
        await producer.stop()
        await engine.dispose()


# ---------------------------------------------------------------------- dispatch

async def dispatch(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.kafka_stages import DispatchLogic
    from services.shard_runner import ShardRunner
    from services.shardlog import ShardLog
    from shared.topics import DEADLETTER, DECISIONS, FAULTS

    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    n = settings.kafka.partitions
    engine = await prepare(settings, {t: n for t in (FAULTS, DECISIONS, DEADLETTER)})
    producer = Producer(settings.kafka)
    await producer.start(deadline_s=None)
    registry = CollectorRegistry()
    warn = lambda message: log.warning("%s", message)  # noqa: E731
    catch_up_s = LIVE_CATCH_UP_S if settings.clock == "wall" else None     # stream: as replay
    shards = ShardRunner(DispatchLogic(inventory, rulebook, warn, catch_up_s=catch_up_s),
                         ShardLog(engine, "dispatch"),
                         settings.kafka, producer, group_id="faultline-dispatch", input_partitions=n,
                         wall_clock=None, metrics=EngineMetrics(registry))
    app = ops_app(lambda: shards.healthy,
                  lambda: _with(shards.degraded, readiness(engine, settings.kafka)), registry,
                  calendar_watch(rulebook, registry, time.time), limits=settings.http)
    try:
        await asyncio.gather(shards.run(stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http))
    finally:
        await producer.stop()
        await engine.dispose()


async def _watchdog(stop: asyncio.Event, drain_s: float) -> None:
    """After SIGTERM, a drain that cannot finish (a broker gone for good) must not hold the
    process: everything handled is already durable, so exiting loses nothing."""
    await stop.wait()
    await asyncio.sleep(drain_s)
    log.error("drain did not finish in %.0fs; exiting", drain_s)
    logging.shutdown()
    os._exit(3)


def run_process(name: str, args) -> int:
    """Run one production process until SIGTERM; exit 0 after a clean drain."""
    logging.basicConfig(level=os.environ.get("FAULTLINE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = ProcessSettings.from_args(args)
    main = {"correlate": correlate, "dispatch": dispatch, "ingest": _ingest, "api": _api}[name]

    async def go() -> None:
        stop = asyncio.Event()
        install_stop(stop)
        asyncio.get_running_loop().create_task(_watchdog(stop, settings.drain_s))
        await main(settings, stop)

    asyncio.run(go())
    return 0


async def _ingest(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.ingest_process import ingest
    await ingest(settings, stop)


async def _api(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.api_process import api
    await api(settings, stop)
