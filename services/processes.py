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

from prometheus_client import CollectorRegistry

from services.config import load_config
from services.metrics import calendar_watch
from services.process_kit import (
    ProcessSettings,
    install_stop,
    ops_app,
    prepare,
    readiness,
    serve_until_stopped,
    watchdog,
    with_degraded,
)
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
from shared.kafka import KafkaTransport

log = logging.getLogger("faultline")


# ---------------------------------------------------------------------- correlate

async def correlate(settings: ProcessSettings, stop: asyncio.Event) -> None:
    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    w = await _wiring(settings, inventory, rulebook, CORRELATE_TOPICS)
    router, shards = correlate_loops(w, clock=time.time if settings.clock == "wall" else None,
                                     hold_s=settings.arrival_hold_s)
    keeper = deadletter_keeper(w)
    app = ops_app(lambda: router.healthy and shards.healthy and keeper.healthy,
                  lambda: with_degraded(shards.degraded, readiness(w.db, settings.kafka)), w.registry,
                  calendar_watch(rulebook, w.registry, time.time), limits=settings.http)
    try:
        await asyncio.gather(router.run(stop), shards.run(stop), keeper.run(stop),
                             router_metrics(router, w.registry, stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http))
    finally:
        await w.producer.stop()
        await w.db.dispose()


# ---------------------------------------------------------------------- dispatch

async def dispatch(settings: ProcessSettings, stop: asyncio.Event) -> None:
    inventory, rulebook = load_config(settings.inventory_path, settings.rulebook_path)
    w = await _wiring(settings, inventory, rulebook, DISPATCH_TOPICS)
    shards = dispatch_loop(w, real_seconds=(lambda s: s) if settings.clock == "wall" else None)
    app = ops_app(lambda: shards.healthy,
                  lambda: with_degraded(shards.degraded, readiness(w.db, settings.kafka)), w.registry,
                  calendar_watch(rulebook, w.registry, time.time), limits=settings.http)
    try:
        await asyncio.gather(shards.run(stop),
                             serve_until_stopped(app, settings.http_port, stop, settings.http))
    finally:
        await w.producer.stop()
        await w.db.dispose()


async def _wiring(settings: ProcessSettings, inventory, rulebook, topics) -> Wiring:
    """The database (migrated) and the broker (topics created) of a production process."""
    db = await prepare(settings, {t: settings.kafka.partitions for t in topics})
    transport = KafkaTransport(settings.kafka)
    producer = transport.producer()
    await producer.start(deadline_s=None)
    return wiring(inventory, rulebook, db, transport, producer, CollectorRegistry())


def run_process(name: str, args) -> int:
    """Run one production process until SIGTERM; exit 0 after a clean drain."""
    settings = ProcessSettings.from_args(args)
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


async def _ingest(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.ingest_process import ingest
    await ingest(settings, stop)


async def _api(settings: ProcessSettings, stop: asyncio.Event) -> None:
    from services.api_process import api
    await api(settings, stop)
