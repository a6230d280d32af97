"""Composition roots of the production processes (CONTRACT §4): `faultline correlate` and
`faultline dispatch` here, `faultline ingest` and `faultline api` in their own modules, all
on the shell of services/process_kit.py. Each builds its adapters when it runs — never at
import — serves /healthz, /readyz and /metrics on FAULTLINE_HTTP_PORT, and drains on
SIGTERM: the current batch is finished, stored, published and committed before the
process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.config import load_config
from services.http_app import Ops, build_ops_app
from services.http_guard import serve_until_stopped
from services.metrics import calendar_watch
from services.process_kit import install_stop, loops_health, prepare, reachable, watchdog
from services.settings import Settings
from services.stage_loops import (
    CORRELATE_TOPICS,
    DISPATCH_TOPICS,
    Wiring,
    correlate_loops,
    deadletter_keeper,
    dispatch_loop,
    router_metrics,
    wiring,
)

log = logging.getLogger("faultline")


# ---------------------------------------------------------------------- correlate

async def correlate(settings: Settings, stop: asyncio.Event) -> None:
    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    w = await _wiring(settings, inventory, rulebook, CORRELATE_TOPICS)
    router, shards = correlate_loops(w, clock=time.time if settings.clock == "wall" else None,
                                     hold_s=settings.arrival_hold_s)
    keeper = deadletter_keeper(w)
    app = _ops_app(settings, w, {"router": router, "correlate": shards, "deadletter": keeper}, [shards])
    try:
        await asyncio.gather(router.run(stop), shards.run(stop), keeper.run(stop),
                             router_metrics(router, w.registry, stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http,
                                                 host=settings.http_host))
    finally:
        await w.producer.stop()
        await w.db.dispose()


# ---------------------------------------------------------------------- dispatch

async def dispatch(settings: Settings, stop: asyncio.Event) -> None:
    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    w = await _wiring(settings, inventory, rulebook, DISPATCH_TOPICS)
    shards = dispatch_loop(w, real_seconds=(lambda s: s) if settings.clock == "wall" else None)
    app = _ops_app(settings, w, {"dispatch": shards}, [shards])
    try:
        await asyncio.gather(shards.run(stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http,
                                                 host=settings.http_host))
    finally:
        await w.producer.stop()
        await w.db.dispose()


async def _wiring(settings: Settings, inventory, rulebook, topics) -> Wiring:
    """The database (migrated) and the broker (topics created) of a production process."""
    db, transport = await prepare(settings, topics)
    producer = transport.producer()
    await producer.start(deadline_s=None)
    return wiring(inventory, rulebook, db, transport, producer, CollectorRegistry())


def _ops_app(settings: Settings, w: Wiring, loops: dict, sharded: list) -> FastAPI:
    """/healthz: every loop runs; /readyz: no shard's timers failing, database and broker
    reachable; the holiday calendar's end as a warning."""
    async def ready() -> list[str]:
        return [d for runner in sharded for d in runner.degraded] + await reachable(w.db, w.transport)
    ops = Ops(w.registry, loops_health(loops), ready, calendar_watch(w.rulebook, w.registry, time.time))
    return build_ops_app(ops, settings.http)


def run_process(name: str, args) -> int:
    """Run one production process until SIGTERM; exit 0 after a clean drain."""
    settings = Settings.from_args(args)
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    main = {"correlate": correlate, "dispatch": dispatch, "ingest": _ingest, "api": _api}[name]

    async def go() -> None:
        stop = asyncio.Event()
        install_stop(stop)
        asyncio.get_running_loop().create_task(watchdog(stop, settings.drain_s))
        await main(settings, stop)

    asyncio.run(go())
    return 0


async def _ingest(settings: Settings, stop: asyncio.Event) -> None:
    from services.ingest_process import ingest
    await ingest(settings, stop)


async def _api(settings: Settings, stop: asyncio.Event) -> None:
    from services.api_process import api
    await api(settings, stop)
